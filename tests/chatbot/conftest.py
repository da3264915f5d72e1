"""Chat fixtures: a widget key of tenant A (origin https://shop.test), its knowledge base, widget clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from chatbot.bot import index_cache_clear
from chatbot.knowledge import faq_entry_create, knowledge_changed
from chatbot.selectors import widget_key_cache_clear
from chatbot.services import widget_key_create
from tenants.context import tenant_context
from tenants.models import Tenant, WidgetKey
from tests.chatbot.knowledge.conftest import KB

ORIGIN = "https://shop.test"


@pytest.fixture(autouse=True)
def _lexical_bot(settings: Any) -> Iterator[None]:
    """Lexical matching keeps these tests fast; the engine's own tests cover embeddings."""
    settings.CX_BOT_EMBEDDINGS = False
    settings.CX_BOT_REPLIES = "inline"  # the reply comes back with the visitor's message (see test_bot_worker)
    index_cache_clear()
    widget_key_cache_clear()
    yield
    index_cache_clear()
    widget_key_cache_clear()


@pytest.fixture
def widget_key(tenant: Tenant) -> WidgetKey:
    with tenant_context(tenant):
        return widget_key_create(allowed_origins=[ORIGIN])


@pytest.fixture
def other_widget_key(other_tenant: Tenant) -> WidgetKey:
    with tenant_context(other_tenant):
        return widget_key_create(allowed_origins=[ORIGIN])


@pytest.fixture
def kb(tenant: Tenant) -> None:
    with tenant_context(tenant):
        for question, phrasings, answer in KB:
            faq_entry_create(question=question, phrasings=phrasings, answer=answer, rebuild=False)
        knowledge_changed()


class Widget:
    """A visitor's browser, as the widget's HTTP endpoints see it."""

    def __init__(self, key: WidgetKey, origin: str = ORIGIN) -> None:
        self.client = Client()
        self.key = key
        self.origin = origin
        self.token = ""

    def post(self, path: str, data: dict[str, Any] | None = None, **headers: str) -> Any:
        extra = {"HTTP_ORIGIN": self.origin, "HTTP_X_CX_KEY": self.key.key, **headers}
        if self.token:
            extra["HTTP_X_CX_VISITOR"] = self.token
        return self.client.post(f"/widget/v1/{path}", data or {}, content_type="application/json", **extra)

    def start(self) -> dict[str, Any]:
        response = self.post("session/")
        assert response.status_code == 200, response.content
        body: dict[str, Any] = response.json()
        self.token = body["visitor"]
        return body

    def say(self, text: str, **extra: Any) -> dict[str, Any]:
        response = self.post("messages/", {"text": text, **extra})
        assert response.status_code == 201, response.content
        return dict(response.json())


@pytest.fixture
def widget(widget_key: WidgetKey) -> Widget:
    w = Widget(widget_key)
    w.start()
    return w
