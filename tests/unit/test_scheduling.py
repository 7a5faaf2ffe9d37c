from datetime import date, datetime, timezone

import pytest

from etlwizard.errors import InvalidInput
from etlwizard.model import backfill_start
from etlwizard.schedulers import LocalScheduler
from etlwizard.scheduling import SCHEDULE_TYPES, Schedule, preview_schedule
from etlwizard.store.embedded import EmbeddedStore

UTC = timezone.utc


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def schedule(**body):
    return Schedule.from_payload(body)


@pytest.mark.parametrize(
    "body, expected",
    [
        (None, None),
        ({}, None),
        ({"type": "manual"}, None),
        ({"type": "hourly"}, "0 * * * *"),
        ({"type": "hourly", "time": "15"}, "15 * * * *"),
        ({"type": "hourly", "time": "07"}, "7 * * * *"),
        ({"type": "hourly", "time": "59"}, "59 * * * *"),
        ({"type": "daily", "time": "09:30"}, "30 9 * * *"),
        ({"type": "daily", "time": "00:00"}, "0 0 * * *"),
        ({"type": "daily", "time": "23:59"}, "59 23 * * *"),
        ({"type": "weekly", "time": "06:05", "day_of_week": "mon"}, "5 6 * * 1"),
        ({"type": "weekly", "time": "06:05", "day_of_week": "Sunday"}, "5 6 * * 0"),
        ({"type": "weekly", "time": "06:05", "day_of_week": "WED"}, "5 6 * * 3"),
        ({"type": "weekly", "time": "06:05", "day_of_week": "saturday"}, "5 6 * * 6"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 1}, "0 2 1 * *"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 15}, "0 2 15 * *"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 28}, "0 2 28 * *"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 29}, "0 2 28-31 * *"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 30}, "0 2 28-31 * *"),
        ({"type": "monthly", "time": "02:00", "day_of_month": 31}, "0 2 28-31 * *"),
        ({"type": "cron", "cron": "*/15 8-18 * * 1-5"}, "*/15 8-18 * * 1-5"),
        ({"type": "cron", "cron": "  0   9 1,15 * MON "}, "0 9 1,15 * MON"),
    ],
)
def test_cron_expression(body, expected):
    assert Schedule.from_payload(body).cron_expression() == expected


def test_payload_is_normalised():
    parsed = schedule(type="weekly", time="09:30", day_of_week="Friday", timezone="Europe/Berlin")
    assert parsed.to_dict() == {
        "type": "weekly",
        "time": "09:30",
        "day_of_week": "fri",
        "day_of_month": None,
        "cron": "",
        "timezone": "Europe/Berlin",
    }
    assert schedule(type="daily", time="09:30", timezone="").timezone == "UTC"


def test_manual_has_no_next_runs():
    assert Schedule.from_payload(None) == Schedule()
    assert Schedule().next_runs(3, after=utc(2026, 1, 1)) == []


@pytest.mark.parametrize(
    "body, after, expected",
    [
        (
            {"type": "daily", "time": "09:00"},
            utc(2026, 3, 28, 12),
            ["2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00", "2026-03-31T09:00:00+02:00"],
        ),
        (
            {"type": "daily", "time": "09:00"},
            utc(2026, 3, 27, 12),
            ["2026-03-28T09:00:00+01:00", "2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00"],
        ),
        (
            {"type": "daily", "time": "09:00"},
            utc(2026, 10, 24, 12),
            ["2026-10-25T09:00:00+01:00", "2026-10-26T09:00:00+01:00", "2026-10-27T09:00:00+01:00"],
        ),
        (
            {"type": "hourly", "time": "0"},
            utc(2026, 3, 28, 23, 30),
            ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
        ),
        (
            {"type": "hourly", "time": "0"},
            utc(2026, 10, 24, 23, 30),
            ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"],
        ),
        (
            {"type": "weekly", "time": "07:45", "day_of_week": "sun"},
            utc(2026, 3, 20),
            ["2026-03-22T07:45:00+01:00", "2026-03-29T07:45:00+02:00", "2026-04-05T07:45:00+02:00"],
        ),
    ],
)
def test_next_runs_in_a_named_zone_across_daylight_saving(body, after, expected):
    runs = schedule(**body, timezone="Europe/Berlin").next_runs(3, after=after)
    assert [r.isoformat() for r in runs] == expected
    assert [str(r.tzinfo) for r in runs] == ["Europe/Berlin"] * 3


def test_next_runs_are_strictly_after():
    daily = schedule(type="daily", time="09:00")
    assert daily.next_runs(2, after=utc(2026, 5, 1, 9)) == [utc(2026, 5, 2, 9), utc(2026, 5, 3, 9)]


def test_preview_lists_the_runs_after_the_clocks_now():
    preview = preview_schedule(
        {"type": "daily", "time": "09:00", "timezone": "Europe/Berlin"}, clock=lambda: utc(2026, 3, 2, 8, 30)
    )  # 09:30 in Berlin
    assert preview == {
        "cron": "0 9 * * *",
        "timezone": "Europe/Berlin",
        "next_runs": ["2026-03-03T09:00:00+01:00", "2026-03-04T09:00:00+01:00", "2026-03-05T09:00:00+01:00"],
    }


@pytest.mark.parametrize(
    "day, after, expected",
    [
        (31, utc(2026, 1, 31, 10), ["2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30"]),
        (31, utc(2028, 1, 31, 10), ["2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31", "2028-06-30"]),
        (30, utc(2026, 1, 31, 10), ["2026-02-28", "2026-03-30", "2026-04-30", "2026-05-30", "2026-06-30"]),
        (29, utc(2026, 1, 31, 10), ["2026-02-28", "2026-03-29", "2026-04-29", "2026-05-29", "2026-06-29"]),
        (29, utc(2028, 1, 31, 10), ["2028-02-29", "2028-03-29", "2028-04-29", "2028-05-29", "2028-06-29"]),
        (15, utc(2026, 1, 31, 10), ["2026-02-15", "2026-03-15", "2026-04-15", "2026-05-15", "2026-06-15"]),
    ],
)
def test_monthly_next_runs_fall_on_the_day_or_the_months_last(day, after, expected):
    runs = schedule(type="monthly", time="09:00", day_of_month=day).next_runs(5, after=after)
    assert [r.isoformat() for r in runs] == [f"{d}T09:00:00+00:00" for d in expected]


@pytest.mark.parametrize(
    "day, fire_time, due",
    [
        (31, utc(2026, 2, 28, 9), True),
        (31, utc(2028, 2, 28, 9), False),
        (31, utc(2028, 2, 29, 9), True),
        (31, utc(2026, 3, 28, 9), False),
        (31, utc(2026, 3, 30, 9), False),
        (31, utc(2026, 3, 31, 9), True),
        (31, utc(2026, 4, 29, 9), False),
        (31, utc(2026, 4, 30, 9), True),
        (30, utc(2026, 2, 28, 9), True),
        (30, utc(2026, 3, 30, 9), True),
        (30, utc(2026, 3, 31, 9), False),
        (29, utc(2026, 2, 28, 9), True),
        (29, utc(2028, 2, 28, 9), False),
        (29, utc(2026, 3, 28, 9), False),
        (29, utc(2026, 3, 29, 9), True),
        (29, utc(2026, 3, 30, 9), False),
    ],
)
def test_is_due_picks_the_day_for_29_to_31(day, fire_time, due):
    assert schedule(type="monthly", time="09:00", day_of_month=day).is_due(fire_time) is due


@pytest.mark.parametrize(
    "fire_time, due",
    [
        (utc(2026, 3, 30, 22, 30), True),
        (utc(2026, 3, 31, 22, 30), False),
        (utc(2026, 4, 29, 22, 30), True),
    ],
)
def test_is_due_reads_the_day_in_the_schedules_zone(fire_time, due):
    monthly = schedule(type="monthly", time="00:30", day_of_month=31, timezone="Europe/Berlin")
    assert monthly.is_due(fire_time) is due


@pytest.mark.parametrize(
    "body",
    [
        {"type": "hourly", "time": "5"},
        {"type": "daily", "time": "09:00"},
        {"type": "weekly", "time": "09:00", "day_of_week": "tue"},
        {"type": "monthly", "time": "09:00", "day_of_month": 28},
        {"type": "cron", "cron": "0 9 28-31 * *"},
    ],
)
def test_only_monthly_29_to_31_filters_firings(body):
    assert schedule(**body).is_due(utc(2026, 3, 28, 9)) is True
    assert schedule(**body).is_due(utc(2026, 3, 30, 9)) is True


CRON_PROBLEM = "is not a five-field unix cron expression (minute hour day-of-month month day-of-week)"
TIME_PROBLEM = "must be HH:MM (00:00 to 23:59), not"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ("daily", "schedule", "schedule: must be an object"),
        (["daily"], "schedule", "schedule: must be an object"),
        (5, "schedule", "schedule: must be an object"),
        (
            {"type": "yearly"},
            "schedule.type",
            "schedule.type: must be one of manual, hourly, daily, weekly, monthly, cron",
        ),
        ({"type": ""}, "schedule.type", "schedule.type: must be one of manual, hourly, daily, weekly, monthly, cron"),
        (
            {"type": ["daily"]},
            "schedule.type",
            "schedule.type: must be one of manual, hourly, daily, weekly, monthly, cron",
        ),
        ({"type": "cron", "cron": "0 9 * * * *"}, "schedule.cron", f"schedule.cron: '0 9 * * * *' {CRON_PROBLEM}"),
        ({"type": "cron", "cron": "61 * * * *"}, "schedule.cron", f"schedule.cron: '61 * * * *' {CRON_PROBLEM}"),
        ({"type": "cron", "cron": "0 24 * * *"}, "schedule.cron", f"schedule.cron: '0 24 * * *' {CRON_PROBLEM}"),
        ({"type": "cron", "cron": "garbage"}, "schedule.cron", f"schedule.cron: 'garbage' {CRON_PROBLEM}"),
        ({"type": "cron", "cron": "a b c d e"}, "schedule.cron", f"schedule.cron: 'a b c d e' {CRON_PROBLEM}"),
        ({"type": "cron", "cron": "@daily"}, "schedule.cron", f"schedule.cron: '@daily' {CRON_PROBLEM}"),
        ({"type": "cron"}, "schedule.cron", f"schedule.cron: '' {CRON_PROBLEM}"),
        (
            {"type": "daily", "time": "09:00", "timezone": "Mars/Olympus"},
            "schedule.timezone",
            "schedule.timezone: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin)",
        ),
        (
            {"type": "daily", "time": "09:00", "timezone": "UTC+2"},
            "schedule.timezone",
            "schedule.timezone: 'UTC+2' is not an IANA time zone (e.g. Europe/Berlin)",
        ),
        (
            {"type": "daily", "time": "09:00", "timezone": "../../etc/passwd"},
            "schedule.timezone",
            "schedule.timezone: '../../etc/passwd' is not an IANA time zone (e.g. Europe/Berlin)",
        ),
        (
            {"type": "manual", "timezone": 5},
            "schedule.timezone",
            "schedule.timezone: must be a string",
        ),
        ({"type": "daily", "time": "25:00"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '25:00'"),
        ({"type": "daily", "time": "24:00"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '24:00'"),
        ({"type": "daily", "time": "12:60"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '12:60'"),
        ({"type": "daily", "time": "9"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '9'"),
        ({"type": "daily", "time": "aa:bb"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} 'aa:bb'"),
        ({"type": "daily", "time": "09:00:00"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '09:00:00'"),
        ({"type": "daily"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} ''"),
        ({"type": "weekly", "time": "9", "day_of_week": "mon"}, "schedule.time", f"schedule.time: {TIME_PROBLEM} '9'"),
        (
            {"type": "monthly", "time": "25:00", "day_of_month": 1},
            "schedule.time",
            f"schedule.time: {TIME_PROBLEM} '25:00'",
        ),
        (
            {"type": "hourly", "time": "60"},
            "schedule.time",
            "schedule.time: the minute of the hour must be 0 to 59, not '60'",
        ),
        (
            {"type": "hourly", "time": "-5"},
            "schedule.time",
            "schedule.time: the minute of the hour must be 0 to 59, not '-5'",
        ),
        (
            {"type": "hourly", "time": "xx"},
            "schedule.time",
            "schedule.time: the minute of the hour must be 0 to 59, not 'xx'",
        ),
        (
            {"type": "weekly", "time": "09:00", "day_of_week": "funday"},
            "schedule.day_of_week",
            "schedule.day_of_week: must be one of mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"type": "weekly", "time": "09:00", "day_of_week": 1},
            "schedule.day_of_week",
            "schedule.day_of_week: must be a string",
        ),
        ({"type": "hourly", "time": 30}, "schedule.time", "schedule.time: must be a string"),
        ({"type": "daily", "time": ["09:00"]}, "schedule.time", "schedule.time: must be a string"),
        ({"type": ["cron"]}, "schedule.type", f"schedule.type: must be one of {', '.join(SCHEDULE_TYPES)}"),
        (
            {"type": "cron", "cron": "* * * * *" + " " * 100},
            "schedule.cron",
            "schedule.cron: must be at most 100 characters of text",
        ),
        (
            {"type": "cron", "cron": "0 1 * * *\x00"},
            "schedule.cron",
            "schedule.cron: must not contain control characters (NUL, tab, line breaks, ...)",
        ),
        (
            {"type": "weekly", "time": "09:00"},
            "schedule.day_of_week",
            "schedule.day_of_week: must be one of mon, tue, wed, thu, fri, sat, sun",
        ),
        *[
            (
                {"type": "monthly", "time": "09:00", "day_of_month": day},
                "schedule.day_of_month",
                "schedule.day_of_month: must be a whole number from 1 to 31",
            )
            for day in (0, 32, -1, "5", True, 5.0, None)
        ],
    ],
)
def test_invalid_schedule(body, field, message):
    with pytest.raises(InvalidInput) as raised:
        Schedule.from_payload(body)
    assert (raised.value.field, raised.value.message) == (field, message)


@pytest.mark.parametrize(
    "cron",
    [
        "0 9 31 2 *",
        "0 9 30 2 *",
        "0 9 L * *",
        "0 9 * * 1#2",
        "R 9 * * *",
    ],
)
def test_cron_cloud_scheduler_cannot_run_is_invalid(cron):
    # Feb 30/31 never comes (next_runs raises CroniterBadDateError); L, # and R are croniter
    # extensions that unix-cron, and so Cloud Scheduler, does not have.
    with pytest.raises(InvalidInput) as raised:
        schedule(type="cron", cron=cron)
    assert raised.value.field == "schedule.cron"
    assert repr(cron) in raised.value.message


# --- LocalScheduler ---------------------------------------------------------------------------

START = utc(2026, 3, 2, 10, 0)
HOURLY = Schedule(type="hourly", time="15")
MESSAGE = b'{"job_id": "job-1", "trigger": "schedule"}'


class Clock:
    """The scheduler's "now": whatever the test last set."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "s.sqlite3")


@pytest.fixture
def published():
    return []


@pytest.fixture
def scheduler(store, published, clock):
    return LocalScheduler(store, published.append, clock=clock)


def test_fires_once_when_due(scheduler, published):
    scheduler.upsert("job-1", HOURLY)
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 14, 59)) == []
    assert published == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 15)) == ["job-1"]
    assert published == [MESSAGE]
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 15)) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 11, 14)) == []
    assert published == [MESSAGE]
    assert scheduler.fire_due(now=utc(2026, 3, 2, 11, 15, 30)) == ["job-1"]
    assert published == [MESSAGE, MESSAGE]


def test_a_tick_fires_by_the_clock(scheduler, published, clock):
    scheduler.upsert("job-1", HOURLY)
    clock.at = utc(2026, 3, 2, 10, 14)
    assert scheduler.fire_due() == []
    clock.at = utc(2026, 3, 2, 10, 15)
    assert scheduler.fire_due() == ["job-1"]
    assert published == [MESSAGE]


def test_missed_firings_publish_one_run(scheduler, published):
    scheduler.upsert("job-1", HOURLY)
    assert scheduler.fire_due(now=utc(2026, 3, 2, 14, 20)) == ["job-1"]
    assert scheduler.fire_due(now=utc(2026, 3, 2, 14, 25)) == []
    assert published == [MESSAGE]


def test_only_due_entries_fire(scheduler, published):
    scheduler.upsert("job-1", HOURLY)
    scheduler.upsert("job-2", Schedule(type="daily", time="18:00"))
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 20)) == ["job-1"]
    assert scheduler.fire_due(now=utc(2026, 3, 2, 18, 0)) == ["job-1", "job-2"]
    assert published == [MESSAGE, MESSAGE, b'{"job_id": "job-2", "trigger": "schedule"}']


def test_schedule_zone_decides_when_due(scheduler, published):
    scheduler.upsert("job-1", Schedule(type="daily", time="12:00", timezone="Europe/Berlin"))
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 59)) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 11, 0)) == ["job-1"]
    assert published == [MESSAGE]


@pytest.mark.parametrize("paused_by", ["pause", "upsert"])
def test_paused_entry_does_not_fire(scheduler, published, paused_by):
    if paused_by == "pause":
        scheduler.upsert("job-1", HOURLY)
        scheduler.pause("job-1")
    else:
        scheduler.upsert("job-1", HOURLY, paused=True)
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 15)) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 12, 20)) == []
    assert published == []


def test_resume_skips_runs_missed_while_paused(scheduler, published, clock):
    scheduler.upsert("job-1", HOURLY)
    scheduler.pause("job-1")
    assert scheduler.fire_due(now=utc(2026, 3, 2, 11, 20)) == []
    clock.at = utc(2026, 3, 2, 12, 30)
    scheduler.resume("job-1")
    assert scheduler.fire_due(now=utc(2026, 3, 2, 12, 40)) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 13, 14, 59)) == []
    assert published == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 13, 15)) == ["job-1"]
    assert published == [MESSAGE]


def test_pause_and_resume_of_an_unknown_job_store_nothing(scheduler, store):
    scheduler.pause("job-9")
    scheduler.resume("job-9")
    assert store.list(LocalScheduler.COLLECTION) == []


def test_delete_removes_the_entry(scheduler, store, published):
    scheduler.upsert("job-1", HOURLY)
    scheduler.delete("job-1")
    assert store.list(LocalScheduler.COLLECTION) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 12, 0)) == []
    assert published == []


def test_upsert_of_a_manual_schedule_deletes_the_entry(scheduler, store, published):
    scheduler.upsert("job-1", HOURLY)
    scheduler.upsert("job-1", Schedule())
    assert store.list(LocalScheduler.COLLECTION) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 12, 0)) == []
    assert published == []


def test_upsert_replaces_the_schedule(scheduler, published):
    scheduler.upsert("job-1", HOURLY)
    scheduler.upsert("job-1", Schedule(type="hourly", time="45"))
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 30)) == []
    assert scheduler.fire_due(now=utc(2026, 3, 2, 10, 45)) == ["job-1"]
    assert published == [MESSAGE]


# --- backfill_start ---------------------------------------------------------------------------

TODAY = date(2026, 3, 15)
CHOICES = "historical_backfill: must be one of last_30_days, last_90_days, last_365_days, all, custom"
NOT_A_DATE = "historical_start_date: must be a date as YYYY-MM-DD"


@pytest.mark.parametrize(
    "choice, custom, expected",
    [
        ("last_30_days", None, "2026-02-13"),
        ("last_90_days", None, "2025-12-15"),
        ("last_365_days", None, "2025-03-15"),
        ("last_30_days", "2020-01-01", "2026-02-13"),
        ("all", None, None),
        ("all", "2020-01-01", None),
        ("custom", "2024-02-29", "2024-02-29"),
        ("custom", "2026-03-15", "2026-03-15"),
    ],
)
def test_backfill_start(choice, custom, expected):
    assert backfill_start(choice, custom, TODAY) == expected


@pytest.mark.parametrize(
    "choice, custom, field, message",
    [
        ("custom", "2026-03-16", "historical_start_date", "historical_start_date: 2026-03-16 is in the future"),
        ("custom", "2027-01-01", "historical_start_date", "historical_start_date: 2027-01-01 is in the future"),
        ("custom", "2025-02-29", "historical_start_date", NOT_A_DATE),
        ("custom", "15/03/2026", "historical_start_date", NOT_A_DATE),
        ("custom", "yesterday", "historical_start_date", NOT_A_DATE),
        ("custom", "", "historical_start_date", NOT_A_DATE),
        ("custom", None, "historical_start_date", NOT_A_DATE),
        ("custom", 20260101, "historical_start_date", NOT_A_DATE),
        ("last_7_days", None, "historical_backfill", CHOICES),
        ("ALL", None, "historical_backfill", CHOICES),
        ("", None, "historical_backfill", CHOICES),
        (None, None, "historical_backfill", CHOICES),
        (30, None, "historical_backfill", CHOICES),
        (["all"], None, "historical_backfill", CHOICES),
        ({"all": True}, None, "historical_backfill", CHOICES),
    ],
)
def test_backfill_start_rejects(choice, custom, field, message):
    with pytest.raises(InvalidInput) as raised:
        backfill_start(choice, custom, TODAY)
    assert (raised.value.field, raised.value.message) == (field, message)


@pytest.mark.parametrize("day, cron", [("monday", "0 6 * * 1"), ("Sun", "0 6 * * 0"), ("saturday", "0 6 * * 6")])
def test_weekly_takes_full_day_names(day, cron):
    assert Schedule.from_payload({"type": "weekly", "time": "06:00", "day_of_week": day}).cron_expression() == cron


@pytest.mark.parametrize("day", ["monkey", "tues", "1"])
def test_weekly_rejects_near_day_names(day):
    with pytest.raises(InvalidInput) as raised:
        Schedule.from_payload({"type": "weekly", "time": "06:00", "day_of_week": day})
    assert raised.value.field == "schedule.day_of_week"


@pytest.mark.parametrize("custom", ["20260101", "2026-W01-1", "2026-1-5"])
def test_custom_backfill_date_must_be_written_yyyy_mm_dd(custom):
    with pytest.raises(InvalidInput) as raised:
        backfill_start("custom", custom, date(2026, 3, 15))
    assert raised.value.field == "historical_start_date"
