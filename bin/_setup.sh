# Sourced by bin/demo, bin/test and bin/lint: makes .venv match pyproject.toml and the requirements
# files, once per change. Commands run from the repository root, where the `web` package is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$(cat "$ROOT"/pyproject.toml "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== installing the project (editable, with its dev extra) into $VENV"
  # Editable: shared/etlwizard is imported where it lies, and the etl-wizard command is on .venv/bin.
  # (grep drops pip's notes about this machine's optional local package mirrors)
  { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "${ROOT}[dev]"; } 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" || true; }
  # The BigQuery emulator's DuckDB needs its spatial extension, shipped as a package (no download).
  "$VENV/bin/python" -c "from duckdb_extensions import import_extension; import_extension('spatial')"
  echo "$stamp" > "$VENV/.requirements-stamp"
fi
# Two malloc arenas, not one per thread: the bulk reader's threads free Arrow buffers that would
# otherwise linger in many arenas and grow a run's memory with the table (README, Benchmarks).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
