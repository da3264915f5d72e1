"""The chat end to end in Chromium: the demo storefront's widget and the agent inbox in two browser contexts,
against a real ASGI server (uvicorn, WebSockets) running the app in this process."""

from __future__ import annotations

import socket
import threading
import time
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from playwright.sync_api import expect

from chatbot.bot import index_cache_clear
from chatbot.knowledge import faq_entry_create, knowledge_changed
from chatbot.models import Conversation, ConversationState, Message
from chatbot.services import agent_message_post, visitor_message_post
from journeys.models import Feedback
from tenants.context import tenant_context
from tenants.models import Role, Tenant, User
from tenants.services import tenant_create
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.chatbot.knowledge.conftest import KB
from tests.conftest import add_member, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_CSS = """
* { font-size: 3px !important; color: red !important; background: yellow !important; }
* { box-sizing: content-box !important; }
div, button, span, p, li, ol, textarea, form { display: none !important; }
cx-chat-widget { position: static !important; }
button { width: 2px !important; height: 2px !important; }
"""


class AppServer:
    """uvicorn serving cxplatform.asgi in a thread; stop() and start() again on the same port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn
        from channels.routing import ProtocolTypeRouter, URLRouter
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.asgi import get_asgi_application

        from chatbot.routing import websocket_urlpatterns

        # cxplatform.asgi's routing, with static files served as pytest-django's live server does.
        application = ProtocolTypeRouter(
            {"http": ASGIStaticFilesHandler(get_asgi_application()), "websocket": URLRouter(websocket_urlpatterns)}
        )
        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            ws="websockets-sansio", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        assert self.thread is not None
        self.thread.join(timeout=15)


@pytest.fixture
def app_server(settings: Any) -> Iterator[AppServer]:
    settings.CX_BOT_EMBEDDINGS = False  # lexical matching: the engine's own tests cover embeddings
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    index_cache_clear()
    # The server's worker threads close their connections after each request, so the test database can be dropped.
    default = connections.settings["default"]
    kept, default["CONN_MAX_AGE"] = default.get("CONN_MAX_AGE", 0), 0
    server = AppServer()
    server.start()
    yield server
    server.stop()
    default["CONN_MAX_AGE"] = kept
    index_cache_clear()


@pytest.fixture
def demo(app_server: AppServer) -> Tenant:
    owner = make_user("owner@demo.test", "Olivia Owner")
    tenant = tenant_create(name="Driftwood Coffee Roasters", owner=owner)
    tenant.slug = django_settings.DEMO_TENANT_SLUG
    tenant.save(update_fields=["slug"])
    with tenant_context(tenant):
        for question, phrasings, answer in KB:
            faq_entry_create(question=question, phrasings=phrasings, answer=answer, rebuild=False)
        knowledge_changed()
    return tenant


@pytest.fixture
def agent_user(demo: Tenant) -> User:
    user = make_user("agent@demo.test", "Arjun Agent")
    add_member(demo, user, Role.AGENT)
    return user


def _contexts(browser: Any, server: AppServer, agent: User) -> tuple[Any, Any]:
    visitor = browser.new_context(base_url=server.url, viewport={"width": 1200, "height": 860})
    # The agent's browser is in another time zone than the business (UTC): times must still read as the business's.
    inbox = browser.new_context(
        base_url=server.url, viewport={"width": 1400, "height": 900}, timezone_id="Pacific/Kiritimati"
    )
    client = Client()
    client.force_login(agent)
    name = django_settings.SESSION_COOKIE_NAME
    inbox.add_cookies([{"name": name, "value": client.cookies[name].value, "url": server.url}])
    return visitor, inbox


def _widget(page: Any) -> Any:
    return page.locator("cx-chat-widget")


def _say(page: Any, text: str) -> None:
    box = _widget(page).get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def _ids(page: Any, selector: str) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('data-id'))")]


def _widget_ids(page: Any) -> list[int]:
    return [
        int(x)
        for x in page.evaluate(
            "() => Array.from(document.querySelector('cx-chat-widget').shadowRoot.querySelectorAll('li[data-id]'))"
            ".map(e => e.getAttribute('data-id'))"
        )
    ]


def test_visitor_bot_handoff_agent_reply_resolve_and_rating(
    browser: Any, app_server: AppServer, demo: Tenant, agent_user: User
) -> None:
    visitor_ctx, inbox_ctx = _contexts(browser, app_server, agent_user)
    visitor, agent = visitor_ctx.new_page(), inbox_ctx.new_page()
    for p in (visitor, agent):
        p.set_default_timeout(20_000)

    agent.goto("/inbox/?view=waiting")
    agent.get_by_text("live", exact=True).wait_for()
    waiting_before = int(agent.locator("#count-waiting").inner_text())

    visitor.goto("/demo/store/")
    widget = _widget(visitor)
    widget.get_by_role("button", name="Open chat").click()
    widget.locator("li.msg").get_by_text("automated assistant").wait_for()
    _say(visitor, "How long does shipping take?")
    widget.locator("li.msg").get_by_text("Orders ship within 1 business day").wait_for()
    screenshot(visitor, "chat-widget-bot-answer")

    _say(visitor, "I'd like to talk to a person please")
    widget.locator("li.msg").get_by_text("A person from our team will join this chat").wait_for()

    # The waiting conversation appears in the agent's list without a reload, and the tab counts it.
    agent.locator(".conv-item.state-waiting").first.wait_for()
    expect(agent.locator("#count-waiting")).to_have_text(str(waiting_before + 1))
    agent.locator(".conv-item a").first.click()
    agent.locator(".decision").first.wait_for()
    assert "handoff" in agent.locator("#transcript").inner_text()
    screenshot(agent, "chat-inbox-conversation")

    agent.get_by_label("Reply").fill("Hi, Arjun here. Your beans left yesterday.")
    agent.get_by_label("Reply").press("Enter")
    widget.locator("li.msg").get_by_text(
        "Hi, Arjun here. Your beans left yesterday."
    ).wait_for()  # live on the visitor's side
    # A message added live shows its time as the page's own ones do: in the business's time zone (UTC+14 in
    # the agent's browser would read 14 hours later).
    with tenant_context(demo):
        reply = Message.objects.filter(sender="agent").latest("id")
    live = agent.locator(f'#transcript li[data-id="{reply.pk}"] time')
    expect(live).to_have_text(reply.created.astimezone(zoneinfo.ZoneInfo(demo.timezone)).strftime("%H:%M"))

    # Hostile text stays text on both sides.
    hostile = '<img src=x onerror="window.__pwned=1"><b>bold?</b>'
    _say(visitor, hostile)
    agent.locator("#transcript").get_by_text(hostile).wait_for()
    widget.locator("li.msg").get_by_text(hostile).wait_for()
    assert visitor.evaluate("() => window.__pwned") is None
    assert agent.evaluate("() => window.__pwned") is None
    assert agent.locator("#transcript b").count() == 0

    agent.get_by_role("button", name="Resolve").click()
    widget.get_by_text("How did we do?").wait_for()
    widget.get_by_role("button", name="4 out of 5").click()
    widget.get_by_label("Comment (optional)").fill("Quick and kind")
    widget.get_by_role("button", name="Send rating").click()
    widget.get_by_text("Thank you for your feedback!").wait_for()
    screenshot(visitor, "chat-widget-rated")

    with tenant_context(demo):
        conversation = Conversation.objects.get()
        feedback = Feedback.objects.get()
        assert conversation.state == ConversationState.RESOLVED and conversation.assignee_id == agent_user.pk
        assert conversation.first_human_reply_at is not None and conversation.bot_resolved is False
        assert (feedback.score, feedback.comment, feedback.conversation_id) == (4, "Quick and kind", conversation.pk)
        stored = list(Message.objects.filter(conversation=conversation).order_by("id").values_list("id", flat=True))
    # Every stored message is shown exactly once on both sides.
    assert _widget_ids(visitor) == stored
    assert _ids(agent, "#transcript li[data-id]") == stored
    visitor_ctx.close()
    inbox_ctx.close()


def test_server_restart_mid_conversation_both_sides_catch_up(
    browser: Any, app_server: AppServer, demo: Tenant, agent_user: User
) -> None:
    visitor_ctx, inbox_ctx = _contexts(browser, app_server, agent_user)
    visitor, agent = visitor_ctx.new_page(), inbox_ctx.new_page()
    for p in (visitor, agent):
        p.set_default_timeout(25_000)
    visitor.goto("/demo/store/")
    widget = _widget(visitor)
    widget.get_by_role("button", name="Open chat").click()
    _say(visitor, "get me a human")
    widget.locator("li.msg").get_by_text("A person from our team will join this chat").wait_for()
    with tenant_context(demo):
        conversation = Conversation.objects.get()
    agent.goto(f"/inbox/{conversation.pk}/")
    agent.get_by_text("live", exact=True).wait_for()

    app_server.stop()
    agent.get_by_text("reconnecting…").wait_for()
    # While this server is down, another instance stores messages from both sides.
    with tenant_context(demo):
        agent_message_post(conversation=conversation, author=agent_user, text="Sorry for the wait - checking now")
        visitor_message_post(visitor_id=conversation.visitor_id, text="No problem, thanks")
        agent_message_post(conversation=conversation, author=agent_user, text="Found it: it ships today")
    app_server.start()

    widget.locator("li.msg").get_by_text("Found it: it ships today").wait_for()
    agent.locator("#transcript").get_by_text("Found it: it ships today").wait_for()
    agent.get_by_text("live", exact=True).wait_for()
    # Live again after the restart.
    _say(visitor, "Great, bye!")
    agent.locator("#transcript").get_by_text("Great, bye!").wait_for()
    time.sleep(0.5)
    with tenant_context(demo):
        stored = list(Message.objects.filter(conversation=conversation).order_by("id").values_list("id", flat=True))
    assert _widget_ids(visitor) == stored  # nothing lost, nothing twice, in order
    assert _ids(agent, "#transcript li[data-id]") == stored
    visitor_ctx.close()
    inbox_ctx.close()


class HostSite:
    """Another website (its own port, so its own origin) whose pages embed the widget. It is on loopback like
    the app: Chromium blocks a public page's requests to 127.0.0.1 (Private Network Access)."""

    def __init__(self, pages: dict[str, str]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _host_page(server: AppServer, key: str, css: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><style>{css}</style></head><body><h1>Some shop</h1>"
        f'<script src="{server.url}/static/widget/cx.js" data-key="{key}" async></script></body></html>'
    )


def test_widget_survives_hostile_css_and_refuses_other_origins(
    browser: Any, app_server: AppServer, demo: Tenant
) -> None:
    from chatbot.services import tenant_widget_ready, widget_key_update

    with tenant_context(demo):
        key = tenant_widget_ready()
    site = HostSite(
        {"/hostile": _host_page(app_server, key.key, HOSTILE_CSS), "/plain": _host_page(app_server, key.key)}
    )
    allowed, refused = f"http://127.0.0.1:{site.port}", f"http://localhost:{site.port}"  # two origins
    with tenant_context(demo):
        widget_key_update(widget_key=key, allowed_origins=[allowed], identity_required=False)
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{allowed}/hostile")
    launcher = _widget(page).get_by_role("button", name="Open chat")
    launcher.wait_for()
    box = launcher.bounding_box()
    assert box is not None and 50 <= box["width"] <= 64 and 50 <= box["height"] <= 64
    assert box["x"] > 1000 and box["y"] > 700  # still fixed at the bottom right
    launcher.click()
    _say(page, "Which payment methods do you accept?")
    answer = _widget(page).locator("li.msg").get_by_text("We accept Visa, Mastercard, Amex and PayPal.")
    answer.wait_for()
    size = answer.evaluate("el => getComputedStyle(el).fontSize")
    assert size == "15px"
    screenshot(page, "chat-widget-hostile-css")

    # A page on an origin that is not on the key's list: no widget, and both HTTP and socket are refused.
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(f"{refused}/plain")
    page.wait_for_timeout(1500)
    assert _widget(page).count() == 0
    assert any("not allowed" in m for m in messages)
    status = page.evaluate(
        """async ([url, key]) => {
            const r = await fetch(url + '/widget/v1/session/', {method: 'POST', mode: 'cors',
              headers: {'Content-Type': 'application/json', 'X-CX-Key': key}, body: '{}'}).catch(() => null);
            return r === null ? 'blocked' : r.status;
        }""",
        [app_server.url, key.key],
    )
    assert status in ("blocked", 403)
    opened = page.evaluate(
        """([url, key]) => new Promise(resolve => {
            const ws = new WebSocket(url.replace('http', 'ws') + '/ws/widget/?key=' + key);
            ws.onopen = () => resolve(true); ws.onerror = () => resolve(false); ws.onclose = () => resolve(false);
        })""",
        [app_server.url, key.key],
    )
    assert opened is False
    context.close()
    site.close()


def test_out_of_hours_email_canned_response_and_private_note(
    browser: Any, app_server: AppServer, demo: Tenant, agent_user: User
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chatbot.services import canned_response_save, widget_settings_get

    with tenant_context(demo):
        look = widget_settings_get()
        tomorrow = (timezone.now() + timedelta(days=1)).weekday()
        look.hours_enabled, look.business_hours = True, {str(tomorrow): [["09:00", "17:00"]]}
        look.save()
        canned_response_save(shortcut="ship", text="Your order ships within 1 business day.")
    visitor_ctx, inbox_ctx = _contexts(browser, app_server, agent_user)
    visitor, agent = visitor_ctx.new_page(), inbox_ctx.new_page()
    for p in (visitor, agent):
        p.set_default_timeout(20_000)

    visitor.goto("/demo/store/")
    widget = _widget(visitor)
    widget.get_by_role("button", name="Open chat").click()
    _say(visitor, "I'd like to talk to a person please")
    widget.locator("li.msg").get_by_text("We're back tomorrow at 09:00").wait_for()
    assert widget.locator("li.msg").get_by_text("I'm bringing in a person").count() == 0
    email = widget.get_by_label("Your email, for our reply")
    email.fill("sam@example.com")
    screenshot(visitor, "chat-widget-out-of-hours-email")
    widget.get_by_role("button", name="Send email").click()
    widget.locator("li.msg").get_by_text("We'll reply to sam@example.com by email.").wait_for()
    assert not email.is_visible()

    with tenant_context(demo):
        conversation = Conversation.objects.get()
    assert conversation.contact_email == "sam@example.com" and conversation.reply_by_email
    agent.goto(f"/inbox/{conversation.pk}/?view=waiting")
    agent.get_by_text("live", exact=True).wait_for()
    agent.locator(".conv-item .reply-by-email").first.wait_for()
    assert "sam@example.com" in agent.locator("#contact-email").inner_text()

    reply = agent.get_by_label("Reply")
    reply.fill("/ship")
    reply.press("Enter")  # expands the canned response; does not send it yet
    assert reply.input_value() == "Your order ships within 1 business day."
    reply.press("Enter")
    widget.locator("li.msg").get_by_text("Your order ships within 1 business day.").wait_for()

    agent.get_by_label("Private note (agents only)").check()
    reply.fill("Customer sounds upset; offer a discount code")
    screenshot(agent, "chat-inbox-canned-and-note")
    reply.press("Enter")
    note = agent.locator("#transcript li.note")
    note.get_by_text("offer a discount code").wait_for()
    note.screenshot(path=str(ARTIFACTS / "chat-inbox-private-note.png"))
    agent.get_by_label("Private note (agents only)").uncheck()
    reply.fill("Anything else I can do?")
    reply.press("Enter")
    widget.locator("li.msg").get_by_text("Anything else I can do?").wait_for()  # sent after the note
    assert "discount code" not in widget.locator("ol").inner_text()
    screenshot(agent, "chat-inbox-note-sent")
    with tenant_context(demo):
        notes = list(Message.objects.filter(conversation=conversation, is_note=True).values_list("text", flat=True))
    assert notes == ["Customer sounds upset; offer a discount code"]
    # The replies (not the note) were emailed to the address left; the transcript says so.
    agent.reload()
    emailed = agent.locator("#transcript li.from-agent:not(.note) .badge.emailed")
    expect(emailed).to_have_count(2)
    assert agent.locator("#transcript li.note .badge.emailed").count() == 0
    emailed.last.scroll_into_view_if_needed()
    agent.locator("#transcript").screenshot(path=str(ARTIFACTS / "chat-inbox-emailed-replies.png"))
    visitor_ctx.close()
    inbox_ctx.close()


def test_owner_sets_business_hours_assignment_and_canned_responses(
    browser: Any, app_server: AppServer, demo: Tenant
) -> None:
    from chatbot.models import CannedResponse, WidgetSettings

    owner = User.objects.get(email="owner@demo.test")
    visitor_ctx, context = _contexts(browser, app_server, owner)  # the second one is signed in
    page = context.new_page()
    page.goto("/settings/widget/")
    page.get_by_label("Use business hours").check()
    page.get_by_label("Monday").fill("9:00-12:30, 13:30-18:00")
    page.get_by_label("Saturday").fill("10:00-14:00")
    page.get_by_label("Auto-assign waiting conversations").check()
    page.get_by_label("Open conversations per agent (cap)").fill("4")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Widget settings saved.").wait_for()
    screenshot(page, "chat-widget-settings-hours")
    with tenant_context(demo):
        look = WidgetSettings.objects.get()
    assert look.hours_enabled and look.auto_assign and look.agent_cap == 4
    assert look.business_hours == {"0": [["09:00", "12:30"], ["13:30", "18:00"]], "5": [["10:00", "14:00"]]}

    page.get_by_role("link", name="Canned responses").click()
    page.get_by_label("Shortcut").fill("hours")
    page.get_by_label("Text").fill("We're in Monday 9-18 and Saturday 10-14.")
    page.get_by_role("button", name="Add").click()
    page.locator("#canned-table").get_by_text("/hours").wait_for()
    screenshot(page, "chat-canned-responses")
    with tenant_context(demo):
        assert CannedResponse.objects.get().shortcut == "hours"
    visitor_ctx.close()
    context.close()
