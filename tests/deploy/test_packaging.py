"""What deploys installs as it will in the cloud: the functions' folder, built as Cloud Build builds
it, installs the etlwizard wheel into a clean virtualenv and imports its entry points from there."""

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def distribution(requirement: str) -> str:
    """A requirement's project name, normalised (PEP 503): 'PyMySQL>=1.1,<2' -> 'pymysql'."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def test_the_deploy_folder_installs_the_library_wheel_in_a_clean_virtualenv(tmp_path):
    built = subprocess.run(
        [str(ROOT / "bin" / "package-functions"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert built.returncode == 0, built.stderr[-2000:]
    folder = tmp_path / "functions"
    wheel = next(folder.glob("etlwizard-*.whl"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(["main.py", "requirements.txt", wheel.name])
    assert (folder / "requirements.txt").read_text().splitlines()[-1] == f"./{wheel.name}"
    with zipfile.ZipFile(tmp_path / "functions.zip") as archive:
        assert sorted(archive.namelist()) == sorted(["main.py", "requirements.txt", wheel.name])
    with zipfile.ZipFile(wheel) as archive:
        modules = {n for n in archive.namelist() if n.startswith("etlwizard/")}
    assert {"etlwizard/config.py", "etlwizard/sources/postgres.py", "etlwizard/store/firestore.py"} <= modules
    assert "etlwizard/emulator.py" not in modules  # the embedded stack's: the cloud never starts one

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # As Cloud Functions' build does: pip in the uploaded folder, from its requirements.txt
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert (venv / "bin" / "etl-wizard").exists()  # the wheel's console script
    probe = (
        "import main, inspect, etlwizard, importlib.metadata as m; "
        "print(sorted(n for n in ('preview_table', 'validate_schema', 'create_job', 'etl_api', 'run_job') "
        "if inspect.isfunction(getattr(main, n, None)))); "
        "print(etlwizard.__file__); "
        "print('|'.join(r for r in m.requires('etlwizard') if 'extra ==' not in r))"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    functions, location, requires = result.stdout.splitlines()
    assert functions == "['create_job', 'etl_api', 'preview_table', 'run_job', 'validate_schema']"
    assert Path(location).is_relative_to(venv)  # the installed wheel's, not a folder beside main.py
    runtime = {
        distribution(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {distribution(r) for r in requires.split("|")} == runtime  # the wheel requires requirements.txt's list


def test_the_wizard_image_copies_what_the_package_build_reads_before_installing_it():
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    install = next(i for i, line in enumerate(lines) if re.fullmatch(r"RUN pip install [-\w ]*\s\.( .*)?", line))
    copied = {path.rstrip("/") for line in lines[:install] if line.startswith("COPY ") for path in line.split()[1:-1]}
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dynamic = build["dynamic"]
    read = {
        "pyproject.toml",
        *build["package-dir"].values(),
        *dynamic["dependencies"]["file"],
        *(f for extra in dynamic["optional-dependencies"].values() for f in extra["file"]),
    }
    assert read <= copied, read - copied
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert not read & ignored
