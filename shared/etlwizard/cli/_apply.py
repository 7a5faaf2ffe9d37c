"""`jobs apply`: make the wizard match a job file (the format is described in _jobfile.py)."""

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ._api import JSON, ApiClient, CliError, segment
from ._jobfile import (
    CREATION_ONLY,
    JOB_FIELDS,
    LEFT_TO_THE_WIZARD,
    PATCHED,
    RECONNECTED,
    JobFile,
    connection_spec,
    file_connection,
    job_spec,
    normal_schedule,
)
from ._reach import check_options, check_sources, file_name, needs_password, security_body
from ._terminal import ask_passphrase


def job_differences(wanted: JSON, spec: JSON) -> list[str]:
    """The fields the file states that differ from the job (fields left out keep what the API chose)."""
    changed = []
    for name in JOB_FIELDS:
        if name in CREATION_ONLY or (name not in wanted and name != "schedule"):
            continue
        if name == "timestamp_column" and spec["load_type"] != "transactional":
            continue  # a catalog job stores no cursor
        if name == "schedule":
            if normal_schedule(wanted.get("schedule")) != normal_schedule(spec["schedule"]):
                changed.append(name)
        elif name == "destination":
            stated = {k: v for k, v in (wanted["destination"] or {}).items() if k in ("dataset", "table")}
            if any(spec["destination"][k] != v for k, v in stated.items()):
                changed.append(name)
        elif wanted[name] != spec.get(name):
            changed.append(name)
    return changed


def connection_differences(entry: JSON, wanted: JSON, connection: JSON) -> list[str]:
    """The fields of a file's connection (`wanted`: file_connection) that differ from the wizard's;
    what the file leaves to the wizard (tls_mode, ssh_host_key) counts only where it is stated."""
    have = connection_spec(connection)
    keys = [*wanted, *(k for k in have if k not in wanted and k not in LEFT_TO_THE_WIZARD)]
    changed = [k for k in keys if wanted.get(k) != have.get(k)]
    tls = connection.get("tls") or {}
    if entry.get("tls_ca_file") and not tls.get("ca"):
        changed.append("tls_ca_file")
    if entry.get("tls_client_cert_file") and not tls.get("client_certificate"):
        changed.append("tls_client_cert_file")
    return changed


_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def _with_host_key_hint(error: CliError, connection: JSON | None) -> CliError:
    """A job created or reconnected reads its table through the connection: through a bastion
    whose host key is not confirmed yet, the API refuses (409) naming the key it presents."""
    found = _FINGERPRINT.search(error.message)
    if error.status != 409 or found is None or connection is None or connection.get("via") != "ssh":
        return error
    return CliError(
        f"{error.message}. If it is the bastion's, add `ssh_host_key: {found.group()}` to connection "
        f"{connection['name']!r} in the file and apply again (or run: etl-wizard connections trust-host-key "
        f"{shlex.quote(connection['name'])} {found.group()}).",
        status=error.status,
    )


@dataclass
class Applier:
    client: ApiClient
    ask_password: Callable[[str], str]
    dry_run: bool = False
    ask_passphrase: Callable[[str], str] = ask_passphrase
    counts: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0, "not applied": 0}
    )

    def _say(self, what: str, outcome: str, count: str) -> None:
        self.counts[count] += 1
        click.echo(f"{what}: {outcome}")

    def apply(self, wanted: JobFile) -> None:
        found = self.client.connections()
        twice = {c["name"] for c in found if sum(d["name"] == c["name"] for d in found) > 1}
        for name in twice & (set(wanted.connections) | {j["connection"] for j in wanted.jobs.values()}):
            raise CliError(
                f"Two connections are named {name!r}: a job file matches them by name, so rename or delete one."
            )
        connections = {c["name"]: c for c in found}
        # What can be known wrong before anything changes, is.
        for name, entry in wanted.jobs.items():
            if entry["connection"] not in connections and entry["connection"] not in wanted.connections:
                raise CliError(
                    f"job {name!r}: no connection is named {entry['connection']!r} in the file or the wizard."
                )
        for name, entry in wanted.connections.items():
            variable = entry.get("password_env")
            if name not in connections and variable is not None and os.environ.get(str(variable)) is None:
                raise CliError(f"connection {name!r}: password_env names {variable!r}, which is not set.")
            if name not in connections:
                where = f"connection {name!r}: "
                check_sources(
                    entry, check_options(entry["type"], entry, where, file_name), wanted.folder, where, file_name
                )
        for name, entry in wanted.connections.items():
            self._apply_connection(name, entry, connections, wanted.folder)
        names = {c["id"]: c["name"] for c in [*found, *connections.values()]}
        jobs = self.client.jobs()
        for name, entry in wanted.jobs.items():
            try:
                self._apply_job(name, entry, [j for j in jobs if j["name"] == name], connections, names)
            except CliError as e:
                raise _with_host_key_hint(e, connections.get(entry["connection"])) from None

    def _apply_connection(self, name: str, entry: JSON, existing: dict[str, JSON], folder: Path) -> None:
        what = f"connection {name}"
        wanted = file_connection(name, entry)
        if name in existing:
            changed = connection_differences(entry, wanted, existing[name])
            if not changed:
                self._say(what, "no change", "unchanged")
            elif changed == ["ssh_host_key"]:
                self._pin_host_key(what, existing[name], wanted["ssh_host_key"])
            else:
                self._say(
                    what,
                    f"differs in {', '.join(changed)}, not applied: a connection "
                    "cannot be edited; create one under a new name and point the jobs at it (apply "
                    "reconnects them)",
                    "not applied",
                )
            return
        if self.dry_run:
            self._say(what, "would be created", "created")
            return
        kind = entry["type"]
        base = ("type", "host", "port", "database", "user", "project")
        body: JSON = {"name": name, **{k: v for k, v in wanted.items() if k in base}}
        where = f"connection {name!r}: "
        via = check_options(kind, entry, where, file_name)
        body.update(security_body(kind, via, entry, folder, where, file_name, lambda: self.ask_passphrase(name)))
        if needs_password(kind, entry):
            body["password"] = self._password(name, entry.get("password_env"))
        existing[name] = self.client.post("/api/connections/", body)["connection"]
        self._say(what, f"created (id {existing[name]['id']}, {existing[name].get('security')})", "created")

    def _pin_host_key(self, what: str, connection: JSON, fingerprint: str) -> None:
        """The bastion's host key the file states, pinned as `connections trust-host-key` does."""
        if not self.dry_run:
            self.client.post(f"/api/connections/{segment(connection['id'])}/host-key/", {"fingerprint": fingerprint})
        self._say(what, f"{'would be updated' if self.dry_run else 'updated'} (ssh_host_key)", "updated")

    def _password(self, name: str, variable: object) -> str:
        if variable is None:
            return self.ask_password(name)
        if not isinstance(variable, str) or variable not in os.environ:
            raise CliError(f"connection {name!r}: password_env names {variable!r}, which is not set.")
        return os.environ[variable]

    def _apply_job(
        self, name: str, entry: JSON, same_name: list[JSON], connections: dict[str, JSON], names: dict[str, str]
    ) -> None:
        what = f"job {name}"
        if entry["connection"] not in connections:
            if self.dry_run:  # a dry run creates no connection to compare against
                self._say(
                    what,
                    f"would be {'applied' if same_name else 'created'} after connection {entry['connection']}",
                    "updated" if same_name else "created",
                )
                return
            raise CliError(f"{what}: connection {entry['connection']!r} was not created.")  # checked in apply
        if len(same_name) > 1:
            raise CliError(
                f"{what}: {len(same_name)} jobs have this name; apply matches jobs by name, so "
                "rename or delete all but one."
            )
        if not same_name:
            self._create_job(name, entry, connections[entry["connection"]]["id"])
            return
        job = same_name[0]
        spec = job_spec(job, names)
        changed = job_differences(entry, spec)
        fixed = [f for f in changed if f not in PATCHED + RECONNECTED]
        if fixed:
            shown = "; ".join(f"{f}: {spec.get(f)!r} -> {entry.get(f)!r}" for f in fixed)
            self._say(
                what,
                f"not applied: {shown} cannot be changed in place. Delete the job "
                f"(etl-wizard jobs delete {job['id']}) and apply again to create it anew",
                "not applied",
            )
            return
        if not changed:
            self._say(what, "no change", "unchanged")
            return
        if not self.dry_run:
            if any(f in RECONNECTED for f in changed):
                self.client.post(
                    f"/api/etl/jobs/{segment(job['id'])}/reconnect/",
                    {
                        "connection_id": connections[entry["connection"]]["id"],
                        "schema_name": entry.get("schema_name", spec["schema_name"]),
                        "table_name": entry.get("table_name", spec["table_name"]),
                    },
                )
            patch = {f: entry.get(f) for f in changed if f in PATCHED}
            if patch:
                self.client.patch(f"/api/etl/jobs/{segment(job['id'])}/", patch)
        self._say(what, f"{'would be updated' if self.dry_run else 'updated'} ({', '.join(changed)})", "updated")

    def _create_job(self, name: str, entry: JSON, connection_id: str) -> None:
        body: JSON = {
            "name": name,
            "connection_id": connection_id,
            **{k: v for k, v in entry.items() if k != "connection"},
        }
        destination = dict(body.get("destination") or {})
        if "mode" not in destination and destination.get("dataset") and destination.get("table"):
            # Load into the table if it is there already (another source's, or a job recreated).
            destination["mode"] = (
                "existing" if self._table_exists(destination["dataset"], destination["table"]) else "new"
            )
        body["destination"] = destination
        if self.dry_run:
            self._say(f"job {name}", "would be created", "created")
            return
        job = self.client.post("/api/etl/jobs/", body)["job"]
        self._say(
            f"job {name}",
            f"created (id {job['id']}, into {job['destination']['dataset']}.{job['destination']['table']})",
            "created",
        )

    def _table_exists(self, dataset: str, table: str) -> bool:
        try:
            self.client.get(f"/api/etl/datasets/{segment(dataset)}/tables/{segment(table)}/")
        except CliError as e:
            if e.status == 404:
                return False
            raise
        return True

    def summary(self) -> str:
        return ", ".join(f"{n} {label}" for label, n in self.counts.items())
