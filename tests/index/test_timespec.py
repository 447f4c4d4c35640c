"""Times typed on the command line: durations back from now and ISO dates, always aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from recorder.errors import ConfigError
from recorder.index.timespec import MAX_RELATIVE, MAX_TIME_TEXT, parse_time

NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_durations_count_back_from_now(text: str, back: timedelta) -> None:
    assert parse_time(text, now=NOW) == NOW - back


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:30", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31 12:30:05Z", datetime(2025, 1, 31, 12, 30, 5, tzinfo=UTC)),
        ("2025-01-31T14:30+02:00", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_and_times_are_utc_unless_an_offset_is_given(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_result_is_utc_even_when_now_is_not() -> None:
    local_now = NOW.astimezone(timezone(timedelta(hours=5)))
    assert parse_time("1h", now=local_now).tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "cannot read 'yesterday'"),
        ("24", "cannot read"),
        ("-5m", "cannot read"),
        ("5 m", "cannot read"),
        ("", "empty"),
        ("2025-13-01", "cannot read"),
        ("1" * (MAX_TIME_TEXT + 1), "too long"),
    ],
)
def test_bad_text_is_a_one_line_config_error_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_time(text, now=NOW, what="--since")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("--since")
    if message != "too long" and message != "empty":
        assert "24h" in str(info.value)


def test_duration_limit_is_exact() -> None:
    days = MAX_RELATIVE.days
    assert parse_time(f"{days}d", now=NOW) == NOW - MAX_RELATIVE
    with pytest.raises(ConfigError, match=f"more than {days} days"):
        parse_time(f"{days}d1s", now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_time("1h", now=datetime(2025, 1, 1))
