"""Each function's deploy folder, built as Cloud Build builds it, imports its entry points in a
clean virtualenv with only the runtime requirements installed."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_deploy_folder_imports_in_a_clean_virtualenv(tmp_path):
    subprocess.run([str(ROOT / "bin" / "package-functions"), str(tmp_path)], check=True, capture_output=True)
    folder = tmp_path / "functions"
    assert sorted(p.name for p in folder.iterdir()) == ["etlwizard", "main.py", "requirements.txt"]
    assert (tmp_path / "functions.zip").stat().st_size > 10_000

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                              "-r", str(folder / "requirements.txt")], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    probe = ("import main, inspect; "
             "print(sorted(n for n in ('preview_table', 'validate_schema', 'create_job', 'etl_api', 'run_job') "
             "if inspect.isfunction(getattr(main, n, None))))")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=folder, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['create_job', 'etl_api', 'preview_table', 'run_job', 'validate_schema']"
