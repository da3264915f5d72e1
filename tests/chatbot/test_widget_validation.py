"""The widget's quick validation of text-only request bodies gives exactly what DRF's serializer gives, and leaves
every input DRF refuses (and anything but plain strings) to the serializer, which then says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from chatbot import widget_views
from chatbot.widget_views import _text_fields, _text_fields_valid, _validated

TEXT_ONLY = [widget_views.SessionIn, widget_views.MessageIn, widget_views.EmailIn]

BODIES: list[dict[str, Any]] = [
    {},
    {"text": "hello"},
    {"text": "  hello there \n"},
    {"text": ""},
    {"text": "   "},
    {"text": "x" * 20000},
    {"text": " " + "x" * 20000 + " "},
    {"text": "x" * 20001},
    {"text": "caf\u00e9 \u2615 \U0001f600"},
    {"text": "bad \ud800 surrogate"},
    {"text": "nul \x00 char"},
    {"text": None},
    {"text": 42},
    {"text": True},
    {"text": ["a"]},
    {"text": "hi", "client_id": ""},
    {"text": "hi", "client_id": "c" * 64},
    {"text": "hi", "client_id": "c" * 65},
    {"text": "hi", "client_id": "  padded  "},
    {"text": "hi", "entry_id": "12", "page_url": "https://shop.test/p?q=1", "unknown": "ignored"},
    {"text": "hi", "page_url": "u" * 2001},
    {"page_url": ""},
    {"page_url": "https://shop.test/"},
    {"email": "ann@example.test"},
    {"email": ""},
    {"email": " ann@example.test "},
    {"email": "e" * 255},
]


def _drf(serializer_class: type[serializers.Serializer], body: dict[str, Any]) -> dict[str, Any] | None:  # type: ignore[type-arg]
    serializer = serializer_class(data=body)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@pytest.mark.parametrize("serializer_class", TEXT_ONLY, ids=lambda c: c.__name__)
def test_quick_validation_agrees_with_drf(serializer_class: type[serializers.Serializer]) -> None:  # type: ignore[type-arg]
    fields = _text_fields(serializer_class)
    assert fields is not None
    quick = 0
    for body in BODIES:
        valid, drf = _text_fields_valid(fields, body), _drf(serializer_class, body)
        assert valid == drf or (valid is None and drf is not None), body  # a number, say: DRF's to convert
        quick += valid is not None
    assert quick >= 2  # ordinary text takes the quick way


def test_other_serializers_are_left_to_drf() -> None:
    for serializer_class in (widget_views.AfterIn, widget_views.IdentifyIn, widget_views.TrackIn, widget_views.CsatIn):
        assert _text_fields(serializer_class) is None


def test_refused_input_gets_drfs_errors() -> None:
    with pytest.raises(serializers.ValidationError) as raised:
        _validated(widget_views.MessageIn, {"text": "x" * 20001})
    assert "20000" in str(raised.value.detail["text"][0])
