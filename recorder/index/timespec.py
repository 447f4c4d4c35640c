"""Times an auditor types (``--since 24h``, ``--until 2025-01-31``), sans I/O: text in, aware datetime out.

Two forms:

- a duration back from now: a number and a unit, ``s`` ``m`` ``h`` ``d`` ``w``, possibly several
  (``90s``, ``30m``, ``24h``, ``7d``, ``2w``, ``1h30m``);
- an ISO 8601 date or date and time (``2025-01-31``, ``2025-01-31T12:00``, ``2025-01-31 12:00:00Z``,
  ``2025-01-31T12:00+02:00``). A date is its midnight; a time without an offset is UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from recorder.errors import ConfigError

#: The furthest back a duration may reach.
MAX_RELATIVE = timedelta(days=36_600)
#: Longest text accepted (a valid time is far shorter).
MAX_TIME_TEXT = 64

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d{1,9}[smhdw])+", re.ASCII)
_PART = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_HINT = "use a duration like 30m, 24h or 7d, or a date like 2025-01-31 or 2025-01-31T12:00Z"


def parse_time(value: str, *, now: datetime, what: str = "time") -> datetime:
    """An aware UTC datetime for ``value`` (see the module docstring); ConfigError says what to type."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    text = value.strip()
    if not text:
        raise ConfigError(f"{what} is empty: {_HINT}")
    if len(text) > MAX_TIME_TEXT:
        raise ConfigError(f"{what} of {len(text)} characters is too long: {_HINT}")
    if _DURATION.fullmatch(text):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
        if seconds > MAX_RELATIVE.total_seconds():
            raise ConfigError(f"{what} {text!r} reaches back more than {MAX_RELATIVE.days} days")
        return (now - timedelta(seconds=seconds)).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what}: cannot read {text!r}: {_HINT}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ConfigError(f"{what} {text!r} is out of range") from None
