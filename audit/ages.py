"""Durations and timestamps as the audit log writes them (kept import-light for the CLI)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so string order is time order (SQLite compares strings)
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'90d', '12h', '2w', '30m', '45s' -> timedelta; anything else is a clear error."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"age must look like 90d, 12h, 2w, 30m or 45s, got {text!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def is_age(text: str) -> bool:
    return _AGE.match(text) is not None


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TS_FORMAT)
