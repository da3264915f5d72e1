"""Parsing of values as people write them in CSV files and JSON: pure functions, no Django."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ParseError(ValueError):
    """A value that cannot be read; the message is meant for the person who wrote it."""


def parse_decimal(raw: str | int | float | Decimal, *, field: str = "value") -> Decimal:
    """'12.50', '12,50', '1.234,50', '1,234.50', '$ 12' -> Decimal. Raises ParseError."""
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, bool):
        raise ParseError(f"{field} must be a number.")
    if isinstance(raw, int | float):
        return Decimal(str(raw))
    if isinstance(raw, str) and "," not in raw:  # fast path: "12.50"
        try:
            value = Decimal(raw)
        except InvalidOperation:
            pass
        else:
            if value.is_finite():
                return value
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "").lstrip("$€£")
    if not text:
        raise ParseError(f"{field} is empty.")
    comma, dot = text.rfind(","), text.rfind(".")
    if comma > dot:  # decimal comma: "1.234,50" or "12,5"
        text = text.replace(".", "").replace(",", ".")
    elif comma != -1:  # thousands commas: "1,234.50"
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ParseError(f"{field} is not a number: {raw!r}.") from exc
    if not value.is_finite():
        raise ParseError(f"{field} is not a number: {raw!r}.")
    return value


def parse_money(raw: str | int | float | Decimal, *, field: str = "price") -> Decimal:
    """A non-negative amount with at most 2 decimal places (rounded half-even beyond that)."""
    value = parse_decimal(raw, field=field)
    if value < 0:
        raise ParseError(f"{field} cannot be negative.")
    if value >= Decimal("1e10"):
        raise ParseError(f"{field} is too large.")
    return value.quantize(Decimal("0.01"))


def parse_int(raw: str | int, *, field: str = "value") -> int:
    if isinstance(raw, bool):
        raise ParseError(f"{field} must be a whole number.")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        try:
            value = parse_decimal(text, field=field)
        except ParseError:
            raise ParseError(f"{field} must be a whole number, not {raw!r}.") from None
        if value != value.to_integral_value():
            raise ParseError(f"{field} must be a whole number, not {raw!r}.") from None
        return int(value)


def parse_bool(raw: str | bool | int | None, *, field: str = "value") -> bool:
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return False
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParseError(f"{field} must be yes/no (true/false, 1/0), not {raw!r}.")


def parse_datetime(raw: str | datetime, *, default_tz: tzinfo = UTC, field: str = "date") -> datetime:
    """ISO 8601 with or without offset ('2024-03-01T10:00:00+01:00', '...Z', '2024-03-01 10:00',
    '2024-03-01'); a value without an offset is read in `default_tz`. Returns an aware datetime."""
    if isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        if not text:
            raise ParseError(f"{field} is empty.")
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.combine(date.fromisoformat(text), time())
            except ValueError:
                raise ParseError(
                    f"{field} is not a date: {raw!r} (use ISO 8601, e.g. 2024-03-01T14:30:00+01:00)."
                ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    if not 1970 <= value.year <= 2200:
        raise ParseError(f"{field} is out of range: {raw!r}.")
    return value


def is_email(text: str) -> bool:
    return len(text) <= 254 and bool(_EMAIL.match(text))
