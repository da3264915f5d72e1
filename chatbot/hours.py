"""Weekly business hours: parsing the settings form, "are we open now", and "when are we back". Pure Python.

Hours are {"0": [["09:00", "17:00"], ...], ...} with 0 = Monday, times in the tenant's timezone, each range
start < end within one day (a night shift is two ranges on two days).
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAYS", "Hours", "hours_format_day", "hours_next_open", "hours_open_at", "hours_parse_day"]

Hours = dict[str, list[list[str]]]
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def hours_parse_day(text: str) -> list[list[str]]:
    """ "9:00-12:30, 13:30-17:00" -> [["09:00", "12:30"], ["13:30", "17:00"]]; "" -> [] (closed).
    Raises ValueError naming the bad part."""
    ranges: list[list[str]] = []
    for part in (p for p in text.split(",") if p.strip()):
        m = _RANGE.match(part)
        if m is None:
            raise ValueError(f"{part.strip()!r} is not a range like 09:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"{part.strip()!r} is not a time of day")
        start, end = f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"
        if start >= end:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        ranges.append([start, end])
    ranges.sort()
    for a, b in itertools.pairwise(ranges):
        if b[0] < a[1]:
            raise ValueError(f"{a[0]}-{a[1]} and {b[0]}-{b[1]} overlap")
    return ranges


def hours_format_day(ranges: list[list[str]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def hours_open_at(hours: Hours, at: datetime, tz: str) -> bool:
    """True when the aware datetime `at` falls inside one of the ranges, in timezone `tz`."""
    local = at.astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    return any(_minutes(a) <= minute < _minutes(b) for a, b in hours.get(str(local.weekday()), []))


def hours_next_open(hours: Hours, at: datetime, tz: str) -> datetime | None:
    """The next opening (aware, in `tz`) strictly after `at` when closed then; None when never open."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        for start, _ in sorted(hours.get(str(day.weekday()), [])):
            h, m = (int(x) for x in start.split(":"))
            opening = datetime.combine(day, time(h, m), tzinfo=zone)
            if opening > local:
                return opening
    return None
