"""The widget's public JS API and behaviour in Chromium: CX.identify/open/close/track and the ready/message/
handoff events, the unread badge, keyboard use, the mobile layout, typing indicators both ways, a host page
whose CSS makes `position: fixed` relative to the body; and the inbox's sound and notification alerts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from chatbot.models import Conversation, Message
from chatbot.services import agent_message_post, identity_hash, tenant_widget_ready, visitor_message_post
from journeys.models import Customer, Event
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.browser import test_chat_widget_inbox as e2e
from tests.browser.conftest import screenshot
from tests.browser.test_chat_widget_inbox import AppServer, HostSite, _contexts, _say, _widget, _widget_ids

# The end-to-end module's fixtures: a real ASGI server, the demo tenant with its knowledge base, an agent.
app_server, demo, agent_user = e2e.app_server, e2e.demo, e2e.agent_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_EVENTS = """
window.__cx = [];
["ready", "message", "handoff"].forEach(function (n) {
  window.addEventListener("cx:" + n, function (e) { window.__cx.push([n, e.detail]); });
});
"""


def _events(page: Any, name: str) -> list[Any]:
    return [d for n, d in page.evaluate("() => window.__cx") if n == name]


def _shadow(page: Any, js: str) -> Any:
    return page.evaluate(f"() => {{ const r = document.querySelector('cx-chat-widget').shadowRoot; return {js}; }}")


def _off_loop(tenant: Tenant, fn: Callable[[], Any]) -> None:
    """Run a service in its own thread: it publishes with async_to_sync, which cannot run on Playwright's loop."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with tenant_context(tenant):
                fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if failure:
        raise failure[0]


def _conversation(tenant: Tenant) -> Conversation:
    with tenant_context(tenant):
        return Conversation.objects.get()


def test_js_api_events_badge_and_keyboard(browser: Any, app_server: AppServer, demo: Tenant, agent_user: User) -> None:
    visitor_ctx, _ = _contexts(browser, app_server, agent_user)
    visitor_ctx.add_init_script(RECORD_EVENTS)
    page = visitor_ctx.new_page()
    page.set_default_timeout(20_000)
    page.goto("/demo/store/")
    page.wait_for_function("() => window.__cx.some(e => e[0] === 'ready')")
    # CX.on("ready") after the fact still calls back; CX.on("message") listens like the window event.
    assert page.evaluate("() => new Promise(r => CX.on('ready', d => r(d)))") == {"conversation": None}
    page.evaluate("() => { window.__on = []; CX.on('message', d => window.__on.push(d)); }")

    panel_open = "r.querySelector('.panel').classList.contains('open')"
    page.evaluate("() => CX.open()")
    assert _shadow(page, panel_open) is True
    assert _shadow(page, "r.querySelector('.launcher').getAttribute('aria-expanded')") == "true"
    assert _shadow(page, "r.activeElement && r.activeElement.id") == "cx-input"  # focus goes to the message box
    page.evaluate("() => CX.close()")
    assert _shadow(page, panel_open) is False

    with tenant_context(demo):
        key = tenant_widget_ready()
    digest = identity_hash(secret=key.identity_secret, external_id="cust-42")
    who = {"id": "cust-42", "email": "grace@example.com", "name": "Grace Hopper", "hash": digest}
    assert page.evaluate("w => CX.identify(w)", who) == {"verified": True}
    assert page.evaluate("() => CX.track('viewed_pricing', {plan: 'pro'})")["status"] == "stored"
    with tenant_context(demo):
        customer = Customer.objects.get(external_id="cust-42")
        assert (customer.name, customer.email) == ("Grace Hopper", "grace@example.com")
        event = Event.objects.get(name="viewed_pricing")
        assert event.properties == {"plan": "pro"} and event.customer_id == customer.pk

    # Keyboard: the launcher opens with Enter, Shift+Enter is a new line, Enter sends, Escape closes.
    page.evaluate("() => document.querySelector('cx-chat-widget').shadowRoot.querySelector('.launcher').focus()")
    page.keyboard.press("Enter")
    assert _shadow(page, panel_open) is True
    page.keyboard.type("How long does")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("shipping take?")
    assert _shadow(page, "r.querySelector('#cx-input').value") == "How long does\nshipping take?"
    page.keyboard.press("Enter")
    _widget(page).locator("li.msg").get_by_text("Orders ship within 1 business day").wait_for()
    assert _shadow(page, "r.querySelector('#cx-input').value") == ""
    page.wait_for_function("() => window.__cx.some(e => e[0] === 'message' && e[1].sender === 'bot')")
    assert any(m["sender"] == "bot" and "ship" in m["text"] for m in page.evaluate("() => window.__on"))
    page.keyboard.press("Escape")
    assert _shadow(page, panel_open) is False
    assert _shadow(page, "r.activeElement && r.activeElement.className") == "launcher"

    # Asking for a person fires "handoff" once, with the conversation id.
    conversation = _conversation(demo)
    assert _events(page, "handoff") == []
    page.evaluate("() => CX.open()")
    _say(page, "I want to talk to a person")
    page.wait_for_function("() => window.__cx.some(e => e[0] === 'handoff')")
    assert _events(page, "handoff") == [{"conversation": conversation.pk}]
    page.evaluate("() => CX.close()")

    # Unread badge: a reply while the panel is closed counts; opening clears it.
    seen = max(_widget_ids(page))
    _off_loop(demo, lambda: agent_message_post(conversation=conversation, author=agent_user, text="Anything else?"))
    _widget(page).locator("li.msg", has_text="Anything else?").wait_for(state="attached")
    with tenant_context(demo):  # the agent's message, and the "joined" notice when the agent takes over
        unread = Message.objects.filter(conversation=conversation, id__gt=seen).exclude(sender="visitor").count()
    assert unread >= 1 and _shadow(page, "r.querySelector('.badge').textContent") == str(unread)
    assert _shadow(page, "getComputedStyle(r.querySelector('.badge')).display") != "none"
    assert _shadow(page, "r.querySelector('.launcher').getAttribute('aria-label')") == f"Open chat, {unread} unread"
    screenshot(page, "chat-widget-unread-badge")
    page.evaluate("() => CX.open()")
    assert _shadow(page, "getComputedStyle(r.querySelector('.badge')).display") == "none"
    assert _shadow(page, "r.querySelector('.launcher').getAttribute('aria-label')") == "Open chat"

    visitor_ctx.close()


def _type_until(box: Any, text: str, indicator: Any, attempts: int = 6) -> None:
    """Type `text` into `box`, again after each 2.5 s throttle window, until `indicator` says someone types."""
    for _ in range(attempts):
        box.press_sequentially(text[:1], delay=20)
        try:
            indicator.filter(has_text="is typing…").wait_for(timeout=2500)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: type again
            continue
        box.press_sequentially(text[1:], delay=20)
        return
    raise AssertionError(f"no typing indicator after {attempts} attempts")


def test_typing_indicators_both_ways(browser: Any, app_server: AppServer, demo: Tenant, agent_user: User) -> None:
    visitor_ctx, inbox_ctx = _contexts(browser, app_server, agent_user)
    visitor, agent = visitor_ctx.new_page(), inbox_ctx.new_page()
    for p in (visitor, agent):
        p.set_default_timeout(20_000)
    visitor.goto("/demo/store/")
    _widget(visitor).get_by_role("button", name="Open chat").click()
    _say(visitor, "get me a human")
    _widget(visitor).locator("li.msg").get_by_text("A person from our team will join this chat").wait_for()
    agent.goto(f"/inbox/{_conversation(demo).pk}/")
    agent.get_by_text("live", exact=True).wait_for()
    visitor.wait_for_timeout(300)

    # Both sides send at most one typing event per 2 s and show one for 4 s: keep typing until it shows
    # (the first may go out before the other side's socket has joined the conversation).
    _type_until(_widget(visitor).get_by_label("Your message"), "where is my order", agent.locator("#typing"))
    assert agent.locator("#typing").inner_text() == "The visitor is typing…"
    _type_until(agent.get_by_label("Reply"), "Let me check", _widget(visitor).locator(".typing"))
    assert _widget(visitor).locator(".typing").inner_text() == "Arjun is typing…"  # first name only
    agent.get_by_label("Reply").press("Enter")  # a message clears the indicator
    _widget(visitor).locator("li.msg").get_by_text("Let me check").wait_for()
    assert _widget(visitor).locator(".typing").inner_text() == ""
    visitor_ctx.close()
    inbox_ctx.close()


def _host(app_server: AppServer, tenant: Tenant, head: str, body: str = "<h1>Shop</h1>") -> tuple[HostSite, str]:
    """A page on another origin (allowed on the tenant's key) embedding the widget; returns the site and URL."""
    from chatbot.services import widget_key_update

    with tenant_context(tenant):
        key = tenant_widget_ready()
    html = (
        f"<!DOCTYPE html><html><head>{head}</head><body>{body}"
        f'<script src="{app_server.url}/static/widget/cx.js" data-key="{key.key}" async></script></body></html>'
    )
    site = HostSite({"/page": html})
    origin = f"http://127.0.0.1:{site.port}"
    with tenant_context(tenant):
        widget_key_update(widget_key=key, allowed_origins=[origin], identity_required=False)
    return site, f"{origin}/page"


def test_mobile_layout_at_375px(browser: Any, app_server: AppServer, demo: Tenant) -> None:
    site, url = _host(app_server, demo, '<meta name="viewport" content="width=device-width, initial-scale=1">')
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    launcher = _widget(page).get_by_role("button", name="Open chat")
    box = launcher.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375 and box["y"] + box["height"] <= 740
    launcher.click()
    panel = _widget(page).locator(".panel")
    panel.wait_for()
    p = panel.bounding_box()
    assert p is not None and (p["x"], p["y"], p["width"], p["height"]) == (0, 0, 375, 740)  # full screen
    _say(page, "Which payment methods do you accept?")
    _widget(page).locator("li.msg").get_by_text("We accept Visa, Mastercard, Amex and PayPal.").wait_for()
    form = _widget(page).locator(".form").bounding_box()
    assert form is not None and form["y"] + form["height"] <= 740 and form["width"] == 375  # reply box on screen
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375  # no horizontal scroll
    # Full screen, the panel's own close button replaces the launcher, which would cover the Send button.
    assert not launcher.is_visible()
    covering = _shadow(
        page, "(b => r.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2))(r.querySelector('.send')"
        ".getBoundingClientRect()).className",
    )  # fmt: skip
    assert covering == "send"
    _widget(page).get_by_role("button", name="Close chat").click()
    assert launcher.is_visible()
    launcher.click()
    screenshot(page, "chat-widget-mobile-375")
    context.close()
    site.close()


# Properties that make `position: fixed` descendants relative to the body instead of the viewport, and more.
HOSTILE_BODY_CSS = """
body { transform: scale(1); filter: blur(0); perspective: 10px; contain: paint; will-change: transform;
       height: 3000px; margin: 0; overflow: visible; zoom: 1; }
html { font-size: 40px; line-height: 9; }
body > * { opacity: 0.2 !important; pointer-events: none !important; z-index: 1 !important; }
cx-chat-widget, cx-chat-widget * { all: unset !important; }
"""


def test_widget_stays_on_screen_when_the_host_body_is_transformed(
    browser: Any, app_server: AppServer, demo: Tenant
) -> None:
    site, url = _host(app_server, demo, f"<style>{HOSTILE_BODY_CSS}</style>", "<h1>Tall shop page</h1>")
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    launcher = _widget(page).get_by_role("button", name="Open chat")
    launcher.wait_for()
    page.mouse.wheel(0, 1200)
    page.wait_for_function("() => window.scrollY > 1000")
    box = launcher.bounding_box()  # relative to the viewport
    assert box is not None and 1100 <= box["x"] <= 1150 and 700 <= box["y"] <= 750, box
    launcher.click()
    panel = _widget(page).locator(".panel").bounding_box()
    assert panel is not None and panel["y"] >= 0 and panel["y"] + panel["height"] <= 800, panel
    _say(page, "Which payment methods do you accept?")
    answer = _widget(page).locator("li.msg").get_by_text("We accept Visa, Mastercard, Amex and PayPal.")
    answer.wait_for()
    assert answer.evaluate("el => getComputedStyle(el).fontSize") == "15px"
    assert answer.is_visible()
    screenshot(page, "chat-widget-hostile-body-transform")
    context.close()
    site.close()


ALERT_STUBS = """
window.__beeps = 0; window.__notes = [];
window.AudioContext = function () {
  return { state: "running", currentTime: 0, destination: {}, resume: function () {},
    createGain: function () {
      return { gain: { setValueAtTime: function () {}, exponentialRampToValueAtTime: function () {} },
               connect: function () {} };
    },
    createOscillator: function () { return { frequency: {}, connect: function () {}, stop: function () {},
                                             start: function () { window.__beeps++; } }; } };
};
window.Notification = function (title, options) { window.__notes.push([title, options.body]); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "visibilityState", { get: function () { return "hidden"; } });
"""


def test_inbox_beeps_and_notifies_for_new_waiting_conversations_with_a_remembered_mute(
    browser: Any, app_server: AppServer, demo: Tenant, agent_user: User
) -> None:
    _, inbox_ctx = _contexts(browser, app_server, agent_user)
    inbox_ctx.add_init_script(ALERT_STUBS)
    agent = inbox_ctx.new_page()
    agent.set_default_timeout(20_000)
    agent.goto("/inbox/?view=waiting")
    agent.get_by_text("live", exact=True).wait_for()
    mute = agent.get_by_role("button", name="Mute new-conversation alerts")
    assert mute.inner_text() == "Sound on"

    _off_loop(demo, lambda: visitor_message_post(visitor_id="cxw_first", text="hello"))  # with the bot: no alert
    _off_loop(demo, lambda: visitor_message_post(visitor_id="cxw_first", text="I need to speak to a real person"))
    agent.wait_for_function("() => window.__beeps === 1 && window.__notes.length === 1")
    assert agent.evaluate("() => window.__notes")[0][0] == "A visitor is waiting for a person"
    _off_loop(demo, lambda: visitor_message_post(visitor_id="cxw_first", text="still there?"))  # same one
    agent.locator(".conv-item.state-waiting").first.wait_for()
    agent.wait_for_timeout(800)
    assert agent.evaluate("() => [window.__beeps, window.__notes.length]") == [1, 1]  # once per conversation

    mute.click()
    assert agent.evaluate("() => localStorage.getItem('cx_inbox_muted')") == "1"
    agent.reload()
    agent.get_by_text("live", exact=True).wait_for()
    unmute = agent.get_by_role("button", name="Alerts muted: unmute new-conversation alerts")
    assert unmute.inner_text() == "Sound off" and unmute.get_attribute("aria-pressed") == "true"
    _off_loop(demo, lambda: visitor_message_post(visitor_id="cxw_second", text="get me a human"))
    agent.locator(".conv-item.state-waiting").nth(1).wait_for()
    agent.wait_for_timeout(800)
    assert agent.evaluate("() => [window.__beeps, window.__notes.length]") == [0, 0]  # muted after reload
    unmute.click()
    _off_loop(demo, lambda: visitor_message_post(visitor_id="cxw_third", text="talk to a person please"))
    agent.wait_for_function("() => window.__beeps === 1 && window.__notes.length === 1")
    inbox_ctx.close()


def test_inbox_context_panel_shows_predictions(
    browser: Any, app_server: AppServer, demo: Tenant, agent_user: User
) -> None:
    from personalization.models import ClusterLabel, CustomerScore, RuleSegment, SegmentMember

    with tenant_context(demo):
        ada = Customer.objects.create(external_id="ada", name="Ada Lovelace", email="ada@example.com")
        CustomerScore.objects.create(
            customer=ada, orders=7, historic_value=410.0, predicted_value_365d=1234.5, churn_risk=0.81,
            churn_band="high", reasons=["no order for 120 days", "usually orders every 30 days"],
            r_score=1, f_score=4, m_score=5, rfm_segment="At risk", cluster=2,
        )  # fmt: skip
        ClusterLabel.objects.create(cluster_id=2, name="Weekend espresso fans", description="buys on weekends")
        club = RuleSegment.objects.create(name="Coffee club", definition={})
        SegmentMember.objects.create(segment=club, customer=ada)
        conversation = Conversation.objects.create(customer=ada, visitor_id="cxw_ada", state="waiting")
        Message.objects.create(conversation=conversation, sender="visitor", text="Where is my parcel?")
    _, inbox_ctx = _contexts(browser, app_server, agent_user)
    agent = inbox_ctx.new_page()
    agent.set_default_timeout(20_000)
    agent.goto(f"/inbox/{conversation.pk}/")
    panel = agent.locator(".context-predictions")
    panel.wait_for()
    text = panel.inner_text()
    for expected in ("At risk (R1 F4 M5)", "Weekend espresso fans", "1234.50", "High", "81%", "no order for 120 days"):
        assert expected in text
    assert panel.get_by_role("link", name="Coffee club").is_visible()
    screenshot(agent, "chat-inbox-context-predictions")
    inbox_ctx.close()
