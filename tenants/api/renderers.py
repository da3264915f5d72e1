"""The API's JSON renderer: DRF's, written by orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils import encoders

# Datetimes go to DRF's encoder (its ISO format, Z for UTC); the rest orjson writes as json does.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class JSONRenderer(renderers.JSONRenderer):
    """Compact JSON as DRF's renderer writes it (UTF-8, its encoder for dates, decimals, lazy strings
    and the rest, U+2028/2029 escaped), about 4x faster: a page of 20 jobs 67-79 -> 16-20 us.

    Differences: a float may be spelt otherwise (1e16 for 1e+16; the same number), and NaN or an
    infinity becomes null where DRF's strict encoder fails the request. Pretty-printing (an `indent`
    asked for in Accept) and anything orjson refuses (integers beyond 64 bits) go to DRF's renderer."""

    _default = encoders.JSONEncoder().default

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None or not self.compact or self.ensure_ascii:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            ret = orjson.dumps(data, default=self._default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF: JavaScript (before ES2019) does not allow these two in string literals.
        return ret.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
