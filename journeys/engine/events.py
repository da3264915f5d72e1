"""Validation of incoming event items (batch ingestion): dicts in, clean tuples or errors out. No Django."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson

from journeys.engine.parsing import ParseError, parse_datetime

MAX_BATCH = 1000
MAX_PROPERTIES_BYTES = 16 * 1024
_OTHER_KEYS = frozenset({"properties", "occurred_at"})
_FUTURE_SLACK = timedelta(days=1)


class CleanEvent(NamedTuple):
    idempotency_key: str
    customer: str  # external id, "" when anonymous
    anonymous_id: str
    type: str
    name: str
    properties: dict[str, Any]
    url: str
    channel: str
    occurred_at: datetime


# Text fields of an item and their length limits.
_TEXT_LIMITS = {"idempotency_key": 128, "customer": 128, "anonymous_id": 128, "type": 32, "name": 200, "url": 2000,
                "channel": 32}  # fmt: skip
_ID_FIELDS = ("customer", "anonymous_id")  # may be sent as numbers


def _properties_error(properties: dict[str, Any]) -> str | None:
    """Why `properties` cannot be stored (too large as JSON, or NUL characters), or None."""
    try:
        encoded = orjson.dumps(properties, default=str)
    except orjson.JSONEncodeError as exc:
        return f"Cannot be stored as JSON: {exc}."
    if len(encoded) > MAX_PROPERTIES_BYTES:
        return f"At most {MAX_PROPERTIES_BYTES // 1024} KB."
    if b"\\u0000" in encoded:
        return "Must not contain NUL characters."
    return None


def derive_key(event: CleanEvent) -> str:
    """A key from the content, so that re-sending an item without a key still stores it once."""
    payload = json.dumps(
        [event.customer, event.anonymous_id, event.type, event.name, event.properties, event.url, event.channel,
         event.occurred_at.isoformat()],
        sort_keys=True, separators=(",", ":"), default=str,
    )  # fmt: skip
    return "h:" + hashlib.sha256(payload.encode()).hexdigest()[:40]


def clean_event(item: Any, *, types: frozenset[str], now: datetime) -> CleanEvent | dict[str, list[str]]:
    """One item -> CleanEvent, or a dict of field -> messages."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Each item must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    text = dict.fromkeys(_TEXT_LIMITS, "")
    unknown = []
    for key, value in item.items():
        limit = _TEXT_LIMITS.get(key)
        if limit is None:
            if key not in _OTHER_KEYS:
                unknown.append(key)
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            if isinstance(value, int) and not isinstance(value, bool) and key in _ID_FIELDS:
                value = str(value)
            else:
                errors[key] = ["Must be a string."]
                continue
        value = value.strip()
        if len(value) > limit:
            errors[key] = [f"At most {limit} characters."]
        elif "\x00" in value:
            errors[key] = ["Must not contain NUL characters."]
        text[key] = value
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(sorted(unknown))}."]
    customer, anonymous_id, type_, name = text["customer"], text["anonymous_id"], text["type"], text["name"]
    if not customer and not anonymous_id and "customer" not in errors and "anonymous_id" not in errors:
        errors["customer"] = ["Give a customer (external id) or an anonymous_id."]
    if not type_:
        errors.setdefault("type", ["This field is required."])
    elif type_ not in types:
        errors["type"] = [f"Unknown type {type_!r}; use one of {', '.join(sorted(types))} (custom with a name)."]
    elif type_ == "custom" and not name:
        errors["name"] = ["A custom event needs a name."]
    properties = item.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        errors["properties"] = ["Must be a JSON object."]
        properties = {}
    elif (problem := _properties_error(properties)) is not None:
        errors["properties"] = [problem]
    raw_time = item.get("occurred_at")
    occurred_at = now
    if raw_time is not None and raw_time != "":
        if not isinstance(raw_time, str):
            errors["occurred_at"] = ["Must be an ISO 8601 date-time string."]
        else:
            try:
                occurred_at = parse_datetime(raw_time, field="occurred_at")
            except ParseError as exc:
                errors["occurred_at"] = [str(exc)]
            else:
                if occurred_at > now + _FUTURE_SLACK:
                    errors["occurred_at"] = ["Is more than a day in the future."]
    if errors:
        return errors
    event = CleanEvent(text["idempotency_key"], customer, anonymous_id, type_, name, properties, text["url"],
                       text["channel"], occurred_at)  # fmt: skip
    return event if event.idempotency_key else event._replace(idempotency_key=derive_key(event))
