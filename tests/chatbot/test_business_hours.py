"""Business hours: the weekly hours on the widget settings page, a handoff inside and outside them, the email a
visitor leaves out of hours (stored, shown in the inbox, queue marked "reply by email")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from chatbot.hours import hours_next_open, hours_open_at, hours_parse_day
from chatbot.models import Conversation, ConversationState, WidgetSettings
from chatbot.services import identity_hash
from journeys.models import Customer
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.chatbot.conftest import ORIGIN, Widget
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

WEEKDAY_HOURS = {str(d): [["09:00", "17:00"]] for d in range(5)}


def test_parse_day() -> None:
    assert hours_parse_day(" 9:00-12:30, 13:30-17:00 ") == [["09:00", "12:30"], ["13:30", "17:00"]]
    assert hours_parse_day("") == []
    assert hours_parse_day("00:00-24:00") == [["00:00", "24:00"]]
    for bad in ("9-5", "17:00-09:00", "09:00-12:00, 11:00-13:00", "25:00-26:00"):
        with pytest.raises(ValueError):
            hours_parse_day(bad)


def test_open_and_next_opening_in_the_tenants_timezone() -> None:
    # Tuesday 2026-03-03 16:30 UTC is 11:30 in New York (open) and 17:30 in Paris (closed).
    at = datetime(2026, 3, 3, 16, 30, tzinfo=UTC)
    assert hours_open_at(WEEKDAY_HOURS, at, "America/New_York")
    assert not hours_open_at(WEEKDAY_HOURS, at, "Europe/Paris")
    back = hours_next_open(WEEKDAY_HOURS, at, "Europe/Paris")
    assert back is not None and (back.weekday(), back.hour, back.minute) == (2, 9, 0)  # Wednesday 09:00
    # Friday evening: back on Monday.
    friday = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    back = hours_next_open(WEEKDAY_HOURS, friday, "UTC")
    assert back is not None and back.date().isoformat() == "2026-03-09" and back.hour == 9
    assert hours_next_open({}, friday, "UTC") is None


def _save_hours(client: Client, hours: dict[str, str], **extra: str) -> Any:
    data = {
        "bot_name": "Beany", "color": "#2f6fdf", "greeting": "Hi!", "allowed_origins": ORIGIN,
        "after_resolved": "reopen", "hours_enabled": "on", "agent_cap": "3", **extra,
    }  # fmt: skip
    data.update({f"hours_{d}": v for d, v in hours.items()})
    return client.post("/settings/widget/", data)


def _tomorrow_only() -> dict[str, str]:
    """Open 09:00-17:00 tomorrow (UTC, the tenant's timezone), closed every other day: now is out of hours."""
    tomorrow = (timezone.now() + timedelta(days=1)).weekday()
    return {str(tomorrow): "09:00-17:00"}


def test_hours_are_edited_on_the_settings_page(owner_client: Client, tenant: Tenant) -> None:
    response = _save_hours(owner_client, {"0": "9:00-12:00, 13:00-17:30", "5": "10:00-14:00"})
    assert response.status_code == 302
    with tenant_context(tenant):
        look = WidgetSettings.objects.get()
    assert look.hours_enabled and look.business_hours == {
        "0": [["09:00", "12:00"], ["13:00", "17:30"]],
        "5": [["10:00", "14:00"]],
    }
    page = owner_client.get("/settings/widget/").content.decode()
    assert 'value="09:00-12:00, 13:00-17:30"' in page
    bad = _save_hours(owner_client, {"2": "9 to 5"})
    assert bad.status_code == 200 and "Wednesday" in bad.content.decode() and "not a range" in bad.content.decode()
    with tenant_context(tenant):
        assert WidgetSettings.objects.get().business_hours["0"] == [["09:00", "12:00"], ["13:00", "17:30"]]


def test_handoff_inside_hours_promises_a_person_soon(owner_client: Client, widget: Widget, kb: None) -> None:
    _save_hours(owner_client, {str(d): "00:00-24:00" for d in range(7)})
    body = widget.say("I want to talk to a person")
    texts = " ".join(m["text"] for m in body["messages"])
    assert "A person from our team will join this chat" in texts and "away" not in texts
    assert body["conversation"] == {"id": body["conversation"]["id"], "state": "waiting", "ask_email": False}


def test_handoff_outside_hours_says_when_and_collects_an_email(
    owner_client: Client, widget: Widget, kb: None, tenant: Tenant, agent: User, api_client: APIClient
) -> None:
    _save_hours(owner_client, _tomorrow_only())
    body = widget.say("I want to talk to a person")
    system = body["messages"][-1]
    assert system["sender"] == "system"
    assert "Our team is away right now. We're back tomorrow at 09:00 (UTC)." in system["text"]
    assert "email" in system["text"]
    assert body["messages"][-2]["text"] == "I'll pass this on to a person from our team."  # no promise of a person now
    assert body["conversation"]["state"] == "waiting" and body["conversation"]["ask_email"] is True
    assert widget.start()["conversation"]["ask_email"] is True  # after a page load too

    bad = widget.post("email/", {"email": "not-an-email"})
    assert bad.status_code == 400 and "valid email" in bad.json()["error"]["message"]
    left = widget.post("email/", {"email": "Sam@Example.com "})
    assert left.status_code == 200 and left.json()["conversation"]["ask_email"] is False
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    assert (conversation.contact_email, conversation.reply_by_email) == ("sam@example.com", True)
    assert conversation.state == ConversationState.WAITING
    assert "sam@example.com" in widget.post("messages/after/", {"after": 0}).json()["messages"][-1]["text"]

    assert [c["id"] for c in api_client.get("/api/v1/conversations/?reply_by_email=true").json()["results"]] == [
        conversation.pk
    ]
    assert api_client.get("/api/v1/conversations/?reply_by_email=false").json()["results"] == []
    inbox = client_for(agent)
    waiting = inbox.get("/inbox/?view=waiting").content.decode()
    assert "reply by email" in waiting and f'data-id="{conversation.pk}"' in waiting
    page = inbox.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "sam@example.com" in page and "reply by email" in page


def test_the_email_goes_to_a_verified_customer_without_one(
    owner_client: Client, widget: Widget, kb: None, tenant: Tenant
) -> None:
    with tenant_context(tenant):
        Customer.objects.create(external_id="cust-5", name="Noor")
    good = identity_hash(secret=widget.key.identity_secret, external_id="cust-5")
    widget.post("identify/", {"id": "cust-5", "hash": good})
    _save_hours(owner_client, _tomorrow_only())
    widget.say("I want to talk to a person")
    assert widget.post("email/", {"email": "noor@example.com"}).status_code == 200
    with tenant_context(tenant):
        assert Customer.objects.get(external_id="cust-5").email == "noor@example.com"


def test_an_email_written_in_the_chat_is_taken_when_asked_for(
    owner_client: Client, widget: Widget, kb: None, tenant: Tenant
) -> None:
    _save_hours(owner_client, _tomorrow_only())
    widget.say("I want to talk to a person")
    not_yet = widget.say("my address is below")
    assert not_yet["conversation"]["ask_email"] is True and len(not_yet["messages"]) == 1
    body = widget.say(" Kim@Example.org ")
    assert [m["sender"] for m in body["messages"]] == ["visitor", "system"]
    assert "kim@example.org" in body["messages"][1]["text"] and body["conversation"]["ask_email"] is False
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    assert (conversation.contact_email, conversation.reply_by_email) == ("kim@example.org", True)
    later = widget.say("other@example.org")  # no longer asked: an ordinary message
    assert len(later["messages"]) == 1


def test_email_needs_a_conversation_of_this_visitor(widget: Widget) -> None:
    assert widget.post("email/", {"email": "sam@example.com"}).status_code == 404


def _left_an_email(owner_client: Client, widget: Widget, tenant: Tenant) -> Conversation:
    _save_hours(owner_client, _tomorrow_only())
    widget.say("I want to talk to a person")
    assert widget.post("email/", {"email": "sam@example.com"}).status_code == 200
    with tenant_context(tenant):
        return Conversation.objects.get()


def test_an_agents_reply_is_emailed_to_the_address_left(
    owner_client: Client,
    widget: Widget,
    kb: None,
    tenant: Tenant,
    agent: User,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    conversation = _left_an_email(owner_client, widget, tenant)
    inbox = client_for(agent)
    with django_capture_on_commit_callbacks(execute=True):
        note = inbox.post(
            f"/inbox/{conversation.pk}/reply/", {"text": "internal only", "note": True}, "application/json"
        )
        reply = inbox.post(f"/inbox/{conversation.pk}/reply/", {"text": "Your beans ship Monday."}, "application/json")
        second = inbox.post(f"/inbox/{conversation.pk}/reply/", {"text": "Tracking: 1Z999."}, "application/json")
    assert note.status_code == 201 and reply.status_code == 201 and second.status_code == 201
    mail, other = mailoutbox  # the private note was not emailed
    assert mail.to == ["sam@example.com"] and mail.reply_to == [agent.email]
    assert "Your beans ship Monday." in mail.body and tenant.name in mail.subject
    # One Message-ID per reply, whatever the send; one thread per conversation in the visitor's mail client
    sent = mail.message()
    assert sent["Message-ID"] == f"<cx-reply-{tenant.pk}-{reply.json()['message']['id']}@cx.localhost>"
    assert other.message()["Message-ID"] == f"<cx-reply-{tenant.pk}-{second.json()['message']['id']}@cx.localhost>"
    thread = f"<cx-conversation-{tenant.pk}-{conversation.pk}@cx.localhost>"
    assert sent["References"] == sent["In-Reply-To"] == other.message()["References"] == thread
    with tenant_context(tenant):
        emailed = {m.text: m.emailed_at for m in conversation.messages.filter(sender="agent")}
    assert emailed["Your beans ship Monday."] is not None and emailed["internal only"] is None
    page = inbox.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "Your replies here are also emailed to it" in page and 'class="badge emailed"' in page
    assert widget.post("messages/after/", {"after": 0}).json()["messages"][-1]["text"] == "Tracking: 1Z999."


def test_a_reply_the_mail_server_refuses_is_kept_and_not_marked_emailed(
    owner_client: Client,
    widget: Widget,
    kb: None,
    tenant: Tenant,
    agent: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation = _left_an_email(owner_client, widget, tenant)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        reply = client_for(agent).post(f"/inbox/{conversation.pk}/reply/", {"text": "Hello?"}, "application/json")
    assert reply.status_code == 201
    with tenant_context(tenant):
        message = conversation.messages.get(text="Hello?")
    assert message.emailed_at is None
    assert f"could not email reply {message.pk}" in caplog.text  # tried, refused, logged


def test_a_conversation_without_an_address_sends_no_mail(
    widget: Widget,
    kb: None,
    tenant: Tenant,
    agent: User,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    widget.say("I want to talk to a person")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client_for(agent).post(f"/inbox/{conversation.pk}/reply/", {"text": "Hi there"}, "application/json")
    assert mailoutbox == []
