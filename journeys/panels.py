"""Customer page panels contributed by higher layers (which journeys must not import).

A panel is a callable `(request, customer) -> (template_name, context) | None`, registered once at start-up
(in the contributing app's AppConfig.ready). The customer page renders each non-None panel in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

Panel = Callable[[HttpRequest, Any], tuple[str, dict[str, Any]] | None]
_PANELS: list[Panel] = []


def register_customer_panel(panel: Panel) -> None:
    """Add a panel to the customer page (idempotent)."""
    if panel not in _PANELS:
        _PANELS.append(panel)


def customer_panels(request: HttpRequest, customer: Any) -> list[SafeString]:
    """The rendered HTML of every registered panel that has something to show for `customer`."""
    out: list[SafeString] = []
    for panel in _PANELS:
        result = panel(request, customer)
        if result is not None:
            template, context = result
            out.append(mark_safe(render_to_string(template, context, request=request)))  # noqa: S308 - our templates
    return out
