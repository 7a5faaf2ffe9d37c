"""The jobs list as the jobs page asks for it: GET /api/etl/jobs/?q=&state=&health=&sort=&page_size=&page_token=

- `q` finds jobs whose name, source (connection name, schema.table) or destination (dataset.table)
  contains every word of it, ignoring case; `state` (active | paused) and `health` (health.py) filter;
  `sort` is created (the default: oldest first, as the list always was), name, last_run (the newest
  run that loads: health.loads) or health, with a leading `-` for descending.
- Without `page_size` or `page_token` the answer is every matching job: clients written before
  pagination (the CLI matches jobs by name over the whole list) stay correct. With either, one page of
  `page_size` jobs (default 50, at most 200) and a `next_page_token` for the next (null on the last).
- A page token is opaque to clients: the sort key of the page's last job (keyset paging, so a job
  created or deleted meanwhile neither repeats nor hides another), bound to the query it came from.
- `total` is the number of jobs matching the query, across all pages.

Runs are read only where needed: for every matching job when the health filter or a sort by health or
last run needs them, else only for the page's jobs. The store has no query across jobs' run
collections, so each job's runs are one store call; those calls go out concurrently.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from .connections import list_connections
from .errors import InvalidInput
from .health import Health, JobHealth, assess, loads, newest_first, started_at
from .job import COLLECTION, Job, JobState, runs_collection
from .jobs import next_three, present
from .payload import check_text
from .stack import Stack
from .store import Document

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
SORTS = ("created", "name", "last_run", "health")
READERS = 8  # concurrent reads of run collections: Firestore answers each in tens of milliseconds

Key = list[Any]  # a job's place in a sort: JSON-safe, ends with the job id so no two are equal
# What each sort's key holds, position by position (a page token's key must have the same shape)
_KEY_SHAPES: dict[str, tuple[type, ...]] = {
    "created": (float, str),
    "name": (str, str),
    "last_run": (int, float, str),
    "health": (int, str, str),
}


@dataclass(frozen=True)
class JobQuery:
    q: list[str]  # the words of the search, casefolded
    state: JobState | None
    health: Health | None
    sort: str
    descending: bool
    page_size: int | None  # None: every matching job
    after: Key | None  # from the page token: list the jobs after this key

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "JobQuery":
        q = check_text(args.get("q", ""), "q", max_length=200).casefold().split()
        state = _choice(args, "state", tuple(JobState))
        health = _choice(args, "health", tuple(Health))
        sort = args.get("sort") or "created"
        field = sort.removeprefix("-")
        if field not in SORTS:
            allowed = ", ".join(SORTS)
            raise InvalidInput("sort", f"must be one of {allowed}, with a leading - for descending")
        token = args.get("page_token") or None
        size_text = args.get("page_size") or None
        page_size = None if size_text is None and token is None else _page_size(size_text)
        query = cls(
            q,
            JobState(state) if state else None,
            Health(health) if health else None,
            field,
            sort != field,
            page_size,
            None,
        )
        if token is None:
            return query
        return replace(query, after=_read_token(token, query))

    def fingerprint(self) -> str:
        """What a page token is bound to: the search, the filters and the sort."""
        shape = [self.q, self.state, self.health, self.sort, self.descending]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidInput(name, f"must be one of {', '.join(allowed)}")
    return value


def _page_size(text: str | None) -> int:
    if text is None:
        return PAGE_SIZE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise InvalidInput("page_size", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def _make_token(key: Key, query: JobQuery) -> str:
    data = json.dumps({"after": key, "query": query.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _read_token(token: str, query: JobQuery) -> Key:
    not_ours = InvalidInput("page_token", "is not a page token of this listing: list again without it")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise not_ours from None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        raise not_ours
    if data["query"] != query.fingerprint():
        raise InvalidInput(
            "page_token",
            "belongs to a listing with another q, state, health or sort: send the same ones, or start again",
        )
    if not _fits(data.get("after"), _KEY_SHAPES[query.sort]):
        raise not_ours
    key: Key = data["after"]
    return key


def _fits(key: object, shape: tuple[type, ...]) -> bool:
    if not isinstance(key, list) or len(key) != len(shape):
        return False
    for value, kind in zip(key, shape, strict=True):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (kind is str and not isinstance(value, str)) or (kind is not str and not number):
            return False
    return True


# --- The listing ----------------------------------------------------------------------------------


def list_jobs(stack: Stack, args: Mapping[str, str]) -> dict[str, Any]:
    query = JobQuery.from_args(args)
    jobs = [Job.from_doc(doc) for doc in stack.store.list(COLLECTION)]
    if query.q:
        names = {c["id"]: c["name"] for c in list_connections(stack)}
        jobs = [job for job in jobs if _matches(job, names.get(job.connection_id, ""), query.q)]
    if query.state is not None:
        jobs = [job for job in jobs if job.state is query.state]

    runs: dict[str, list[Document]] = {}
    health: dict[str, JobHealth] = {}

    def judge(chosen: Iterable[Job]) -> None:
        chosen = [job for job in chosen if job.id not in runs]
        runs.update(read_runs(stack, [job.id for job in chosen]))
        health.update({job.id: assess(job, runs[job.id], stack.settings.lease_seconds) for job in chosen})

    if query.health is not None or query.sort in ("last_run", "health"):
        judge(jobs)
    if query.health is not None:
        jobs = [job for job in jobs if health[job.id].status is query.health]

    key = _sort_key(query.sort, runs, health)
    ranked = sorted(((key(job), job) for job in jobs), key=lambda pair: pair[0], reverse=query.descending)
    total = len(ranked)
    if query.after is not None:
        after = query.after
        ranked = [(k, job) for k, job in ranked if (k < after if query.descending else k > after)]
    page = ranked if query.page_size is None else ranked[: query.page_size]
    judge(job for _, job in page)
    more = query.page_size is not None and len(ranked) > query.page_size
    upcoming = cache(next_three)  # jobs often share a schedule (daily at 02:00): croniter once for them
    return {
        "jobs": [present(job, runs[job.id], health[job.id], upcoming) for _, job in page],
        "total": total,
        "next_page_token": _make_token(page[-1][0], query) if more else None,
    }


def _matches(job: Job, connection_name: str, words: Sequence[str]) -> bool:
    fields = (
        job.name,
        connection_name,
        f"{job.schema_name}.{job.table_name}",
        f"{job.destination.dataset}.{job.destination.table}",
    )
    text = "\n".join(fields).casefold()  # no word holds a line break: none matches across two fields
    return all(word in text for word in words)


def _sort_key(sort: str, runs: Mapping[str, list[Document]], health: Mapping[str, JobHealth]) -> Callable[[Job], Key]:
    if sort == "name":
        return lambda job: [job.name.casefold(), job.id]
    if sort == "health":
        return lambda job: [health[job.id].status.rank, job.name.casefold(), job.id]
    if sort == "last_run":

        def last_run(job: Job) -> Key:
            loaded = loads(runs[job.id])  # a verification on demand is not a run of the job's loads
            latest = loaded[0] if loaded else None
            if latest is None:
                return [0, 0.0, job.id]  # never ran: before every job that did
            return [1, started_at(latest).timestamp(), job.id]

        return last_run
    return lambda job: [job.created_at.timestamp(), job.id]


def read_runs(stack: Stack, job_ids: Sequence[str]) -> dict[str, list[Document]]:
    """Each job's run documents, newest first."""

    def read(job_id: str) -> list[Document]:
        return newest_first(stack.store.list(runs_collection(job_id)))

    if len(job_ids) <= 1:
        return {job_id: read(job_id) for job_id in job_ids}
    with ThreadPoolExecutor(max_workers=min(READERS, len(job_ids)), thread_name_prefix="runs") as pool:
        return dict(zip(job_ids, pool.map(read, job_ids), strict=True))
