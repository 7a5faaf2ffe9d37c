# Sourced by bin/demo and bin/test: makes .venv match the requirements files, once per change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== installing requirements into $VENV"
  # (grep drops pip's notes about this machine's optional local package mirrors)
  { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt"; } 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" || true; }
  # The BigQuery emulator's DuckDB needs its spatial extension, shipped as a package (no download).
  "$VENV/bin/python" -c "from duckdb_extensions import import_extension; import_extension('spatial')"
  echo "$stamp" > "$VENV/.requirements-stamp"
fi
export PYTHONPATH="$ROOT/shared:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Two malloc arenas, not one per thread: the bulk reader's threads free Arrow buffers that would
# otherwise linger in many arenas and grow a run's memory with the table (README, Benchmarks).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
