"""`etl-wizard`: the command line client of the wizard's JSON API (connections, jobs, runs,
destination tables), and jobs kept as a YAML file in version control (`jobs export` / `jobs apply`).

It is a pure HTTP client: the local demo's wizard (bin/demo) by default, or a deployed wizard or
etl_api function with a Google ID token (--url / ETL_WIZARD_URL, --token / ETL_WIZARD_TOKEN)."""

from ._commands import cli, main

__all__ = ["cli", "main"]
