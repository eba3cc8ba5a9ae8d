"""Go duration parsing/formatting and the chat workspace TTL setting [ttl.setting]."""

from __future__ import annotations

import datetime as dt

import pytest

from berth.domain.gocompat import (
    DurationError,
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)
from berth.domain.ttl import parse_chat_workspace_ttl, validate_chat_workspace_ttl
from berth.errors import InvalidInput, Validation

NS, US, MS, S, M, H = 1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000
MAX_NS = (1 << 63) - 1
MIN_NS = -(1 << 63)


# Go's own parseDurationTests table (src/time/time_test.go).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", 1 * S),
        ("1.00s", 1 * S),
        ("1.004s", 1 * S + 4 * MS),
        ("1.0040s", 1 * S + 4 * MS),
        ("100.00100s", 100 * S + 1 * MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12µs", 12 * US),  # U+00B5
        ("12μs", 12 * US),  # U+03BC
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * M),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * M),
        ("2h30m", 2 * H + 30 * M),
        ("1.5h", 90 * M),
        ("300ms", 300 * MS),
        ("90s", 90 * S),
        ("-1h", -H),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", MAX_NS),
        ("9223372036854775.807us", MAX_NS),
        ("9223372036s854ms775us807ns", MAX_NS),
        ("-9223372036854775808ns", MIN_NS),
        ("-9223372036854775.808us", MIN_NS),
        ("-9223372036s854ms775us808ns", MIN_NS),
        ("-2562047h47m16.854775808s", MIN_NS),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
    ],
)
def test_parse_duration_ns_matches_go(text: str, expected: int) -> None:
    assert parse_duration_ns(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("1", 'time: missing unit in duration "1"'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1h1d", 'time: unknown unit "d" in duration "1h1d"'),
        ("1 h", 'time: unknown unit " h" in duration "1 h"'),
        ("1µ", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
        ("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"'),
        ('"1x"', 'time: invalid duration "\\"1x\\""'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_duration_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300ms", dt.timedelta(milliseconds=300)),
        ("90s", dt.timedelta(seconds=90)),
        ("2h30m", dt.timedelta(hours=2, minutes=30)),
        ("1.5h", dt.timedelta(minutes=90)),
        ("-1h", dt.timedelta(hours=-1)),
        ("0", dt.timedelta(0)),
        ("1500ns", dt.timedelta(microseconds=1)),  # truncated toward zero
        ("-1500ns", dt.timedelta(microseconds=-1)),
        ("999ns", dt.timedelta(0)),
    ],
)
def test_parse_duration_to_timedelta(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


# Go's durationTests table for Duration.String().
@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1µs"),
        (2200 * US, "2.2ms"),
        (3300 * MS, "3.3s"),
        (4 * M + 5 * S, "4m5s"),
        (4 * M + 5001 * MS, "4m5.001s"),
        (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
        (8 * M + 1, "8m0.000000001s"),
        (MAX_NS, "2562047h47m16.854775807s"),
        (MIN_NS, "-2562047h47m16.854775808s"),
        (-1, "-1ns"),
        (999, "999ns"),
        (1 * US, "1µs"),
        (1 * MS, "1ms"),
    ],
)
def test_format_duration_ns_matches_go(ns: int, expected: str) -> None:
    assert format_duration_ns(ns) == expected


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (dt.timedelta(hours=2), "2h0m0s"),
        (dt.timedelta(seconds=90), "1m30s"),
        (dt.timedelta(milliseconds=300), "300ms"),
        (dt.timedelta(milliseconds=1500), "1.5s"),
        (dt.timedelta(0), "0s"),
        (dt.timedelta(hours=-1), "-1h0m0s"),
        (dt.timedelta(microseconds=1), "1µs"),
        (dt.timedelta(microseconds=1500), "1.5ms"),
        (dt.timedelta(days=30), "720h0m0s"),
        (dt.timedelta(days=1, seconds=1, microseconds=1), "24h0m1.000001s"),
    ],
)
def test_format_duration_canonical(td: dt.timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@pytest.mark.parametrize("text", ["2h30m", "1.5h", "-1h", "300ms", "1h2m3s4ms5us", "0"])
def test_format_then_parse_round_trips(text: str) -> None:
    td = parse_duration(text)
    assert parse_duration(format_duration(td)) == td


# --- ttl.setting -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", dt.timedelta(0)),
        ("0", dt.timedelta(0)),
        ("0s", dt.timedelta(0)),
        ("2h", dt.timedelta(hours=2)),
    ],
)
def test_ttl_setting_parse(raw: str, expected: dt.timedelta) -> None:
    """[ttl.setting] empty is 0; otherwise a Go duration."""
    assert parse_chat_workspace_ttl(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", 'invalid duration "abc": time: invalid duration "abc"'),
        ("1d", 'invalid duration "1d": time: unknown unit "d" in duration "1d"'),
        ("1", 'invalid duration "1": time: missing unit in duration "1"'),
        ("-1h", "duration must be non-negative"),
    ],
)
def test_ttl_setting_parse_errors(raw: str, message: str) -> None:
    """[ttl.setting] parse errors and negative values, with the reference wording."""
    with pytest.raises(ValueError, match=r".*") as info:
        parse_chat_workspace_ttl(raw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("30s", "Workspace TTL must not be less than 1 minute."),
        ("59.999s", "Workspace TTL must not be less than 1 minute."),
        ("500ns", "Workspace TTL must not be less than 1 minute."),
        ("-1h", "Workspace TTL must be non-negative."),
        ("745h", "Workspace TTL must not exceed 30 days."),
        ("720h1ns", "Workspace TTL must not exceed 30 days."),
        ("abc", 'time: invalid duration "abc"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
    ],
)
def test_ttl_setting_admin_refusals(raw: str, message: str) -> None:
    """[ttl.setting] what an admin setting the TTL is told."""
    with pytest.raises(InvalidInput) as info:
        validate_chat_workspace_ttl(raw)
    assert info.value.message == message
    assert info.value.validations == (Validation(field="value", detail=message),)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("2h", "2h0m0s"),
        ("", "0s"),
        ("0", "0s"),
        ("0s", "0s"),
        ("1m", "1m0s"),
        ("90m", "1h30m0s"),
        ("720h", "720h0m0s"),
        (" 8h ", "8h0m0s"),
    ],
)
def test_ttl_setting_admin_stores_canonical_form(raw: str, stored: str) -> None:
    """[ttl.setting] stored in canonical form."""
    assert validate_chat_workspace_ttl(raw) == stored
    assert parse_chat_workspace_ttl(stored) == parse_duration(stored)
