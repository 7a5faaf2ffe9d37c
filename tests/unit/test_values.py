import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from etlwizard.values import format_duration, to_json

PLUS_2 = timezone(timedelta(hours=2))
MINUS_530 = timezone(-timedelta(hours=5, minutes=30))
FORTY_DIGITS = "1234567890123456789012345678.901234567890"


def exactly(result, expected):
    return type(result) is type(expected) and result == expected


@pytest.mark.parametrize("value", [None, True, False, "", "text", "ünïcødé"])
def test_passthrough(value):
    assert to_json(value) is value


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (42, 42),
        (-42, -42),
        (2**53 - 1, 2**53 - 1),
        (-(2**53 - 1), -(2**53 - 1)),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (2**63 - 1, "9223372036854775807"),
        (2**64 - 1, "18446744073709551615"),
        (-(2**63), "-9223372036854775808"),
    ],
)
def test_int(value, expected):
    assert exactly(to_json(value), expected)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1.5, 1.5),
        (-0.25, -0.25),
        (0.0, 0.0),
        (1e300, 1e300),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_float(value, expected):
    assert exactly(to_json(value), expected)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1E+3", "1000"),
        ("-1E+3", "-1000"),
        ("1.23E+5", "123000"),
        ("1E-10", "0.0000000001"),
        ("0E-9", "0.000000000"),
        ("12.50", "12.50"),
        ("-0.000001", "-0.000001"),
        ("0", "0"),
        ("99999999999999999999999999999.999999999", "99999999999999999999999999999.999999999"),
        (FORTY_DIGITS, FORTY_DIGITS),
        ("-" + FORTY_DIGITS, "-" + FORTY_DIGITS),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_decimal(value, expected):
    assert exactly(to_json(Decimal(value)), expected)


@pytest.mark.parametrize(
    "value, expected",
    [
        (datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=PLUS_2), "2024-01-02T03:04:05.123456+02:00"),
        (datetime(2024, 1, 2, tzinfo=timezone.utc), "2024-01-02T00:00:00.000000+00:00"),
        (datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=MINUS_530), "1999-12-31T23:59:59.000001-05:30"),
        (datetime(2024, 1, 2, 3, 4, 5, 7), "2024-01-02T03:04:05.000007"),
        (datetime(1, 1, 1), "0001-01-01T00:00:00.000000"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999), "9999-12-31T23:59:59.999999"),
        (date(2024, 2, 29), "2024-02-29"),
        (date(1, 1, 1), "0001-01-01"),
        (time(3, 4, 5, 123456), "03:04:05.123456"),
        (time(23, 59, 59), "23:59:59.000000"),
        (time(0, 0), "00:00:00.000000"),
        (time(3, 4, 5, tzinfo=PLUS_2), "03:04:05.000000+02:00"),
    ],
)
def test_dates_and_times(value, expected):
    assert exactly(to_json(value), expected)


DURATIONS = [
    (timedelta(0), "00:00:00.000000"),
    (timedelta(hours=1, minutes=2, seconds=3, microseconds=400000), "01:02:03.400000"),
    (timedelta(microseconds=1), "00:00:00.000001"),
    (timedelta(days=1, seconds=1, microseconds=5), "24:00:01.000005"),
    (timedelta(hours=838, minutes=59, seconds=59), "838:59:59.000000"),
    (-timedelta(hours=838, minutes=59, seconds=59), "-838:59:59.000000"),
    (-timedelta(hours=1, minutes=2, seconds=3, microseconds=400000), "-01:02:03.400000"),
    (timedelta(microseconds=-1), "-00:00:00.000001"),
    (timedelta(hours=-1, minutes=30), "-00:30:00.000000"),
    (timedelta(days=-1), "-24:00:00.000000"),
]


@pytest.mark.parametrize("value, expected", DURATIONS)
def test_format_duration(value, expected):
    assert format_duration(value) == expected


@pytest.mark.parametrize("value, expected", DURATIONS)
def test_timedelta(value, expected):
    assert to_json(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"", ""),
        (b"x", "eA=="),
        (b"\x00\xffhello", "AP9oZWxsbw=="),
        (bytearray(b"\x00\xffhello"), "AP9oZWxsbw=="),
        (memoryview(b"\x00\xffhello"), "AP9oZWxsbw=="),
        (bytes(range(16)), "AAECAwQFBgcICQoLDA0ODw=="),
    ],
)
def test_binary_is_base64(value, expected):
    assert exactly(to_json(value), expected)


def test_uuid():
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_json(value) == "12345678-1234-5678-1234-567812345678"


def test_nested_containers():
    value = {
        "a": Decimal("1.0"),
        1: [2**60, b"x", {"t": time(1, 2, 3)}, (Decimal("1E+2"), None)],
        "d": {"when": datetime(2024, 1, 2, tzinfo=timezone.utc), "ok": True},
        "s": frozenset({timedelta(seconds=90)}),
        "f": float("nan"),
    }
    assert to_json(value) == {
        "a": "1.0",
        "1": ["1152921504606846976", "eA==", {"t": "01:02:03.000000"}, ["100", None]],
        "d": {"when": "2024-01-02T00:00:00.000000+00:00", "ok": True},
        "s": ["00:01:30.000000"],
        "f": "NaN",
    }


@pytest.mark.parametrize("value, expected", [([], []), ({}, {}), ((), []), (set(), [])])
def test_empty_containers(value, expected):
    assert exactly(to_json(value), expected)
