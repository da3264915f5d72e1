"""What a visitor message costs on the hot path: the widget POST's queries are pinned; webhook endpoints are
looked up in the shared cache (a tenant with none pays no query), and any change to an endpoint reaches the
very next message; a bot batch sends one delivery per reply."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chatbot import realtime, replies, services
from chatbot.models import Conversation, Message, Sender, WidgetSettings
from chatbot.services import bot_replies_answer
from journeys.models import Event
from tenants import webhooks
from tenants.context import tenant_context
from tenants.models import Tenant, WebhookDelivery, WebhookEndpoint
from tests.chatbot.conftest import Widget

HOOK = "https://hooks.example.com/cx"


@pytest.fixture
def nobody_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Visitor messages are stored and left waiting for the bot, as with replies from chat_bot_worker."""
    monkeypatch.setattr(replies, "bot_reply_request", lambda **_: [])


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Webhook POSTs, recorded instead of sent (no test touches the internet)."""
    posts: list[dict[str, Any]] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
        posts.append({"url": url, **json.loads(body)})
        return 200, "ok"

    monkeypatch.setattr(webhooks, "_post", post)
    return posts


def _created(posts: list[dict[str, Any]]) -> list[str]:
    return [p["data"]["text"] for p in posts if p["type"] == "message.created"]


@pytest.mark.django_db
def test_a_visitor_message_stores_in_five_queries_when_no_endpoint_listens(
    widget: Widget, kb: None, nobody_answers: None, django_assert_num_queries: Any
) -> None:
    widget.say("hello", client_id="c0")  # the conversation (and the endpoints' cache entry) exist now
    # (Savepoint,) the locked conversation, INSERT (a resend fails its unique client id), UPDATE, (release).
    with django_assert_num_queries(5):
        posted = widget.say("How long does shipping take?", client_id="c1")
    assert [m["sender"] for m in posted["messages"]] == ["visitor"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite refuses concurrent writers (table locked)")
@pytest.mark.django_db(transaction=True)
def test_a_message_sent_twice_at_once_is_stored_once(widget: Widget, tenant: Tenant, nobody_answers: None) -> None:
    widget.say("hello", client_id="c0")
    barrier = threading.Barrier(4)
    answers: list[list[int]] = []

    def resend() -> None:
        try:
            with tenant_context(tenant):
                barrier.wait(timeout=10)
                posted = services.visitor_message_post(visitor_id=visitor, text="Are you there?", client_id="c1")
                answers.append([m.pk for m in posted])
        finally:
            connection.close()

    visitor = services.visitor_id_for(widget.token)
    threads = [threading.Thread(target=resend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    with tenant_context(tenant):
        stored = list(Message.objects.filter(client_id="c1").values_list("pk", flat=True))
    assert len(stored) == 1 and answers == [stored] * 4


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_gets_the_very_next_message_after_any_change(
    widget: Widget, tenant: Tenant, other_tenant: Tenant, nobody_answers: None, sent: list[dict[str, Any]]
) -> None:
    with tenant_context(other_tenant):  # another tenant's endpoint never makes this tenant's messages go out
        webhooks.webhook_endpoint_create(url=HOOK + "/other")
    widget.say("before any endpoint")  # cached: no endpoint wants anything
    with tenant_context(tenant):
        endpoint, _ = webhooks.webhook_endpoint_create(url=HOOK, events=["feedback.created"])
    widget.say("not subscribed yet")
    with tenant_context(tenant):
        webhooks.webhook_endpoint_update(endpoint=endpoint, events=["message.created"])
    widget.say("subscribed")
    with tenant_context(tenant):
        webhooks.webhook_endpoint_update(endpoint=endpoint, active=False)
    widget.say("paused")
    with tenant_context(tenant):  # a change made past the services (admin, shell) counts as well
        WebhookEndpoint.objects.filter(pk=endpoint.pk).get().delete()
        WebhookEndpoint.objects.create(url=HOOK, secret="whsec_x", events=[])
    widget.say("every event")
    assert _created(sent) == ["subscribed", "every event"]
    assert {p["url"] for p in sent} == {HOOK}


@pytest.mark.django_db(transaction=True)
def test_a_bot_batch_sends_one_delivery_per_reply(
    widget_key: Any, kb: None, tenant: Tenant, nobody_answers: None, sent: list[dict[str, Any]]
) -> None:
    visitors = [Widget(widget_key) for _ in range(3)]
    for n, visitor in enumerate(visitors):
        visitor.start()
        visitor.say(f"Can I return a product? #{n}")
    with tenant_context(tenant):
        webhooks.webhook_endpoint_create(url=HOOK, events=["message.created"])
        written = bot_replies_answer(conversation_ids=list(Conversation.objects.values_list("pk", flat=True)))
        replies_ = [m for m in written if m.sender == Sender.BOT]
        assert len(replies_) == 3
        deliveries = list(WebhookDelivery.objects.filter(event="message.created"))
        assert len({d.event_id for d in deliveries}) == len(deliveries) == 3
        assert not Message.objects.filter(awaiting_bot=True).exists()
    assert sorted(p["data"]["id"] for p in sent) == sorted(m.pk for m in replies_)


def test_publishes_of_many_requests_share_a_batch_and_each_marker_follows_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = get_channel_layer()
    if not isinstance(layer, realtime.RedisChannelLayer):
        pytest.skip("needs the Redis channel layer (REDIS_URL)")
    batches: list[int] = []  # how many of this test's events each batch sent (other tests may publish too)
    send_all = realtime._send_all

    async def counting(layer: Any, queue: list[tuple[str, dict[str, Any]]]) -> None:
        batches.append(sum(1 for g, _ in queue if g == group))
        await send_all(layer, queue)

    monkeypatch.setattr(realtime, "_send_all", counting)
    # A plain channel name: received here from the publisher's loop, where a socket's would need the process's.
    group, channel = "chat.t0.vdrain", f"cxtest.drain.{uuid.uuid4().hex}"
    async_to_sync(layer.group_add)(group, channel)
    seen: list[int] = []

    def marker(n: int) -> Any:  # as a worker-mode request's: runs once its message is published
        async def received() -> None:
            seen.append((await asyncio.wait_for(layer.receive(channel), timeout=5))["event"]["n"])

        return received

    publisher, busy, done = realtime._publisher(), threading.Event(), threading.Event()

    async def block() -> None:
        busy.set()
        await asyncio.sleep(0.3)

    publisher.submit(layer, [], block)
    assert busy.wait(timeout=10)  # the loop is busy: five requests queue up meanwhile
    for n in range(5):
        publisher.submit(layer, [(group, {"kind": "message", "n": n})])
        publisher.submit(layer, [], marker(n))
    publisher.submit(layer, [], done.set)
    assert done.wait(timeout=10)
    async_to_sync(layer.group_discard)(group, channel)
    assert [n for n in batches if n] == [5] and seen == [0, 1, 2, 3, 4]


@pytest.mark.django_db
def test_a_first_message_opens_its_conversation_in_eleven_queries(
    widget: Widget, kb: None, tenant: Tenant, nobody_answers: None, django_assert_num_queries: Any
) -> None:
    widget.say("hello")  # the endpoints' cache entry exists now (the visitor's conversation too: a new visitor next)
    widget.token = ""
    widget.start()
    # Savepoint, none to lock, the settings, the visitor's identity, INSERT the conversation and its greeting,
    # the chat_started event (savepoint, release: its two statements run on journeys' own cursor), INSERT the
    # message, UPDATE the conversation, release. (Was 14: a savepoint of the start's own and a second UPDATE.)
    with django_assert_num_queries(11):
        posted = widget.say("How long does shipping take?", client_id="c1")
    with tenant_context(tenant):
        conversation = Conversation.objects.get(pk=posted["conversation"]["id"])
        stored = list(conversation.messages.order_by("id").values_list("sender", "text"))
        assert [sender for sender, _ in stored] == [Sender.BOT, Sender.VISITOR]  # the greeting opens it
        assert services.AUTOMATED_NOTICE in stored[0][1]
        assert conversation.last_message_at == conversation.messages.latest("id").created
        assert Event.objects.filter(type="chat_started", anonymous_id=conversation.visitor_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_webhooks_of_one_transaction_look_up_the_endpoints_events_once(
    widget: Widget, kb: None, tenant: Tenant, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(tenant):
        webhooks.webhook_endpoint_create(url=HOOK, events=["conversation.created", "message.created"])
    lookups: list[int] = []
    subscribed = webhooks._subscribed_events
    monkeypatch.setattr(
        webhooks, "_subscribed_events", lambda tenant_id: (lookups.append(tenant_id), subscribed(tenant_id))[1]
    )
    widget.say("How long does shipping take?")  # one transaction stores the message, another the bot's reply
    assert lookups == [tenant.pk, tenant.pk]
    assert sorted(p["type"] for p in sent) == ["conversation.created"] + ["message.created"] * 3
    with tenant_context(tenant):
        greeting, asked, answer = Message.objects.order_by("id")
    assert _created(sent) == [greeting.text, asked.text, answer.text]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_takes_its_webhooks_along_and_the_others_still_go_out(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    with tenant_context(tenant):
        webhooks.webhook_endpoint_create(url=HOOK, events=["message.created"])
        with transaction.atomic():
            with contextlib.suppress(RuntimeError), transaction.atomic():
                webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "rolled back, the first one"}])
                raise RuntimeError
            webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "kept"}])
            with contextlib.suppress(RuntimeError), transaction.atomic():
                webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "rolled back, after another"}])
                raise RuntimeError
            webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "kept too"}])
            assert sent == []  # nothing before the commit
        with contextlib.suppress(RuntimeError), transaction.atomic():
            webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "never committed"}])
            raise RuntimeError
        webhooks.webhook_emit_on_commit("message.created", lambda: [{"text": "outside a transaction: at once"}])
    assert _created(sent) == ["kept", "kept too", "outside a transaction: at once"]


@pytest.mark.django_db
def test_a_bot_batch_reads_its_answers_in_one_query_however_many_entries_it_answers_with(
    widget_key: Any, kb: None, tenant: Tenant, nobody_answers: None
) -> None:
    questions = [
        "What are your delivery times?", "How long does shipping take?", "Can I return a product?",
        "Can I pay with PayPal?", "How do I pause my coffee subscription?", "are you open on sunday",
    ]  # fmt: skip
    for question in questions:
        visitor = Widget(widget_key)
        visitor.start()
        visitor.say(question)
    with tenant_context(tenant):
        warm_up, first, *others = Conversation.objects.order_by("id").values_list("pk", flat=True)
        bot_replies_answer(conversation_ids=[warm_up])  # the process loads the tenant's index
        with CaptureQueriesContext(connection) as one:
            bot_replies_answer(conversation_ids=[first])
        with CaptureQueriesContext(connection) as four:
            written = bot_replies_answer(conversation_ids=others)
        entries = {m.decision["entry_title"] for m in written}
    assert len(entries) == 4 and [m.decision["action"] for m in written] == ["answer"] * 4
    assert len(four.captured_queries) == len(one.captured_queries)


@pytest.mark.django_db
def test_the_written_out_queries_read_and_write_rows_as_the_orm_does(widget: Widget, tenant: Tenant) -> None:
    widget.post("identify/", {"id": "cust-9", "name": "Ana"})  # unverified: a JSON claim on the conversation
    posted = widget.say("hello there", client_id="c1")
    with tenant_context(tenant):
        orm = Conversation.objects.get(pk=posted["conversation"]["id"])
        with transaction.atomic():
            written_out = services._latest_locked(orm.visitor_id)
            assert written_out is not None
            fields = [f.attname for f in Conversation._meta.concrete_fields]
            assert [getattr(written_out, f) for f in fields] == [getattr(orm, f) for f in fields]
            buttons = [{"label": "Shipping", "entry_id": "faq:1"}]
            added = services._message_add(
                written_out, sender=Sender.BOT, text="Is it one of these?", buttons=buttons,
                decision={"action": "clarify", "confidence": 0.2, "candidates": [{"entry_id": "faq:1"}]},
            )  # fmt: skip
        assert orm.claimed_identity == {"id": "cust-9", "name": "Ana", "email": ""}
        stored = Message.objects.get(pk=added.pk)
        assert (stored.tenant_id, stored.conversation_id, stored.sender, stored.text) == (
            tenant.pk,
            orm.pk,
            Sender.BOT,
            "Is it one of these?",
        )
        assert stored.buttons == buttons and stored.decision["candidates"] == [{"entry_id": "faq:1"}]
        assert (stored.client_id, stored.reply_to_id, stored.is_note, stored.created) == (
            None,
            None,
            False,
            added.created,
        )
        assert services.widget_settings_get().pk == WidgetSettings.objects.get().pk
