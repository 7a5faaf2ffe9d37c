"""Schedules: what the wizard asks for -> a unix-cron string with a time zone, and when it runs next.
The schedulers that fire them are in schedulers.py."""

import calendar
import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from .clock import Clock, utc_now
from .errors import InvalidInput
from .payload import optional_text

log = logging.getLogger(__name__)

SCHEDULE_TYPES = ("manual", "hourly", "daily", "weekly", "monthly", "cron")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's 0..6
DAY_NAMES = {d: d for d in DAYS} | {
    name: name[:3] for name in ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
}
# Cloud Scheduler's unix-cron: numbers, * , - / and month or day names; not croniter's L, #, W, R, H.
_NAMES = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat", re.I)
_CRON_FIELD = re.compile(r"[0-9*,/\-]+")
MAX_CRON = 100  # the longest of a schedule's text fields; a real cron line is far shorter


@dataclass(frozen=True)
class Schedule:
    type: str = "manual"
    time: str = ""  # "HH:MM" for daily/weekly/monthly; "MM" (minute) for hourly
    day_of_week: str = ""  # mon..sun for weekly
    day_of_month: int | None = None  # 1..31 for monthly; past a month's end it runs on its last day
    cron: str = ""  # five-field unix cron for "cron"
    timezone: str = "UTC"

    @classmethod
    def from_payload(cls, body: object) -> "Schedule":
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise InvalidInput("schedule", "must be an object")
        kind = body.get("type", "manual")
        if not isinstance(kind, str) or kind not in SCHEDULE_TYPES:
            raise InvalidInput("schedule.type", f"must be one of {', '.join(SCHEDULE_TYPES)}")
        text = {
            name: optional_text(body, name, max_length=MAX_CRON, field=f"schedule.{name}") or ""
            for name in ("time", "day_of_week", "cron", "timezone")
        }
        zone = text["timezone"] or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidInput("schedule.timezone", f"{zone!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        day = body.get("day_of_month")
        if day is not None and (isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31):
            raise InvalidInput("schedule.day_of_month", "must be a whole number from 1 to 31")
        schedule = cls(
            type=kind,
            time=text["time"],
            day_of_week=DAY_NAMES.get(text["day_of_week"].lower(), text["day_of_week"]),
            day_of_month=day,
            cron=" ".join(text["cron"].split()),
            timezone=zone,
        )
        schedule.cron_expression()  # validates the rest
        return schedule

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _hour_minute(self) -> tuple[int, int]:
        parts = self.time.split(":")
        try:
            hour, minute = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (-1, -1)
        except ValueError:
            hour = minute = -1
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise InvalidInput("schedule.time", f"must be HH:MM (00:00 to 23:59), not {self.time!r}")
        return hour, minute

    def cron_expression(self) -> str | None:
        """The unix-cron string Cloud Scheduler runs, or None for a manual job."""
        if self.type == "manual":
            return None
        if self.type == "hourly":
            past_hour = self.time.split(":")[-1] if self.time else "0"
            if not (past_hour.isdigit() and 0 <= int(past_hour) < 60):
                raise InvalidInput("schedule.time", f"the minute of the hour must be 0 to 59, not {self.time!r}")
            return f"{int(past_hour)} * * * *"
        if self.type == "cron":
            fields = self.cron.split()
            plain = all(_CRON_FIELD.fullmatch(_NAMES.sub("0", f)) for f in fields)
            if len(fields) != 5 or not plain or not croniter.is_valid(self.cron):
                raise InvalidInput(
                    "schedule.cron",
                    f"{self.cron!r} is not a five-field unix cron expression "
                    "(minute hour day-of-month month day-of-week)",
                )
            try:
                croniter(self.cron, datetime(2000, 1, 1)).get_next(datetime)
            except CroniterBadDateError:
                raise InvalidInput("schedule.cron", f"{self.cron!r} never runs: no month has that day") from None
            return self.cron
        hour, minute = self._hour_minute()
        if self.type == "daily":
            return f"{minute} {hour} * * *"
        if self.type == "weekly":
            if self.day_of_week not in DAYS:
                raise InvalidInput("schedule.day_of_week", "must be one of mon, tue, wed, thu, fri, sat, sun")
            return f"{minute} {hour} * * {DAYS.index(self.day_of_week)}"
        day = self.day_of_month
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise InvalidInput("schedule.day_of_month", "must be a whole number from 1 to 31")
        # Cron cannot say "the 31st, or the month's last day": fire on 28-31 and let is_due pick.
        return f"{minute} {hour} {day} * *" if day <= 28 else f"{minute} {hour} 28-31 * *"

    def is_due(self, fire_time: datetime) -> bool:
        """Whether a cron firing at fire_time (any zone) is a run: only monthly 29-31 filters."""
        day = self.day_of_month or 0
        if self.type != "monthly" or day <= 28:
            return True
        local = fire_time.astimezone(ZoneInfo(self.timezone))
        last = calendar.monthrange(local.year, local.month)[1]
        return local.day == min(day, last)

    def next_runs(self, count: int = 3, after: datetime | None = None) -> list[datetime]:
        """The next `count` runs strictly after `after` (default: now), in the schedule's zone."""
        expression = self.cron_expression()
        if expression is None:
            return []
        zone = ZoneInfo(self.timezone)
        start = (after or utc_now()).astimezone(zone)
        times = croniter(expression, start)
        runs: list[datetime] = []
        while len(runs) < count:
            fire = times.get_next(datetime)
            if self.is_due(fire):
                runs.append(fire)
        return runs


def preview_schedule(body: object, clock: Clock = utc_now) -> dict[str, Any]:
    """What the wizard shows before saving: the cron string and the next three runs."""
    schedule = Schedule.from_payload(body)
    return {
        "cron": schedule.cron_expression(),
        "timezone": schedule.timezone,
        "next_runs": [t.isoformat() for t in schedule.next_runs(3, after=clock())],
    }
