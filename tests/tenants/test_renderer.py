"""The API's JSON renderer writes what DRF's own renderer writes."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFRenderer

from tenants.api.renderers import JSONRenderer

UTC = datetime.UTC
PARIS = datetime.timezone(datetime.timedelta(hours=1))

CASES: dict[str, Any] = {
    "page": {
        "count": 2,
        "next": None,
        "results": [{"id": 1, "ok": True, "ratio": 0.25, "tags": ["a", "b"], "params": {"rows": 100}}],
    },
    "text": ["plain", "café ☕", "line\u2028separator\u2029", '<script>"quoted"</script>', "\x00\x1f"],
    "datetimes": [
        datetime.datetime(2026, 12, 1, 8, 30, 15, 250000, tzinfo=UTC),
        datetime.datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
        datetime.datetime(2026, 12, 1, 9, 30),
        datetime.date(2026, 12, 1),
        datetime.time(9, 30, 1, 5),
    ],
    "others": {
        "decimal": decimal.Decimal("12.50"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "duration": datetime.timedelta(minutes=3),
        "lazy": gettext_lazy("Resolved"),
        "tuple": (1, 2),
        "bytes": b"raw",
        "non-str keys": {1: "one"},
    },
    "big integer": [2**70],
    "empty": {},
}


@pytest.mark.parametrize("name", list(CASES))
def test_output_is_drfs(name: str) -> None:
    data = CASES[name]
    assert JSONRenderer().render(data, "application/json") == DRFRenderer().render(data, "application/json")


def test_indent_asked_for_is_honoured() -> None:
    data = CASES["page"]
    pretty = JSONRenderer().render(data, "application/json; indent=2")
    assert pretty == DRFRenderer().render(data, "application/json; indent=2")
    assert b"\n  " in pretty


def test_nothing_renders_as_nothing() -> None:
    assert JSONRenderer().render(None) == b""
