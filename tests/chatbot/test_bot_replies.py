"""The bot's replies after the visitor's message is stored: answered in order per conversation (each seeing
the replies before it), once, by the web process's batching thread or by chat_bot_worker from the Redis
stream; what was left waiting is swept up; publishes reach every socket of the groups."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from chatbot import realtime, replies
from chatbot.knowledge import bot_embedder, faq_entry_create, knowledge_changed
from chatbot.models import Conversation, ConversationState, Message, Sender
from chatbot.services import bot_replies_answer, conversation_assign
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.chatbot.conftest import Widget
from tests.chatbot.knowledge.conftest import KB


@pytest.fixture
def nobody_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Visitor messages are stored and left waiting, as when no worker has taken them yet."""
    monkeypatch.setattr(replies, "bot_reply_request", lambda **_: [])


def _messages(tenant: Tenant) -> list[Message]:
    with tenant_context(tenant):
        return list(Message.objects.order_by("id"))


def _answer_all(tenant: Tenant) -> list[Message]:
    with tenant_context(tenant):
        return bot_replies_answer(conversation_ids=list(Conversation.objects.values_list("pk", flat=True)))


@pytest.mark.django_db
def test_quick_messages_are_answered_in_order_each_seeing_the_replies_before_it(
    widget: Widget, kb: None, tenant: Tenant, nobody_answers: None
) -> None:
    first = widget.say("xqzv blorp")["messages"]
    second = widget.say("wibble frotz")["messages"]
    assert [m["sender"] for m in first + second] == ["visitor", "visitor"]  # 201 at once, nothing answered yet
    written = _answer_all(tenant)
    visitor_ids = [first[0]["id"], second[0]["id"]]
    bots = [m for m in written if m.sender == Sender.BOT]
    assert [m.reply_to_id for m in bots] == visitor_ids and bots[0].pk < bots[1].pk
    # The second reply saw the first one's fallback: two low-confidence replies in a row hand over.
    assert bots[0].decision["action"] == "fallback" and bots[1].decision["action"] == "handoff"
    with tenant_context(tenant):
        assert Conversation.objects.get().state == ConversationState.WAITING
        assert not Message.objects.filter(awaiting_bot=True).exists()
    assert _answer_all(tenant) == []  # a redelivered request answers nothing twice


@pytest.mark.django_db
def test_a_conversation_an_agent_took_meanwhile_gets_no_bot_reply(
    widget: Widget, kb: None, tenant: Tenant, agent: User, nobody_answers: None
) -> None:
    widget.say("How long does shipping take?")
    with tenant_context(tenant):
        conversation_assign(conversation=Conversation.objects.get(), agent=agent)
    assert _answer_all(tenant) == []
    with tenant_context(tenant):
        assert not Message.objects.filter(sender=Sender.BOT, reply_to__isnull=False).exists()
        assert not Message.objects.filter(awaiting_bot=True).exists()


@pytest.mark.django_db
def test_the_sweep_answers_what_was_left_waiting(
    widget: Widget, kb: None, tenant: Tenant, nobody_answers: None
) -> None:
    asked = widget.say("Can I return a product?")["messages"][0]
    assert replies.sweep() == 0  # too recent: its worker may still be on it
    with tenant_context(tenant):
        Message.objects.filter(pk=asked["id"]).update(created=timezone.now() - timedelta(minutes=5))
    assert replies.sweep() == 1
    reply = _messages(tenant)[-1]
    assert reply.reply_to_id == asked["id"] and "30 days" in reply.text


def _wait_for_reply(widget: Widget, after: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in widget.post("messages/after/", {"after": after}).json()["messages"] if m["sender"] == "bot"]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("no bot reply")


@pytest.mark.django_db(transaction=True)
def test_with_replies_in_a_thread_the_request_answers_at_once_and_the_reply_follows(
    widget: Widget, kb: None, tenant: Tenant, settings: Any
) -> None:
    settings.CX_BOT_REPLIES = "thread"
    posted = widget.say("How long does shipping take?")
    assert [m["sender"] for m in posted["messages"]] == ["visitor"] and posted["conversation"]["state"] == "bot"
    reply = _wait_for_reply(widget, posted["messages"][0]["id"])
    assert "1 business day" in reply["text"]


@pytest.mark.django_db(transaction=True)
def test_chat_bot_worker_answers_from_the_redis_stream(widget: Widget, kb: None, tenant: Tenant, settings: Any) -> None:
    settings.CX_BOT_REPLIES = "worker"
    stop = threading.Event()
    worker = threading.Thread(target=replies.worker_run, kwargs={"consumer": "test", "stop": stop}, daemon=True)
    worker.start()
    try:
        posted = widget.say("Can I return a product?")
        assert [m["sender"] for m in posted["messages"]] == ["visitor"]
        reply = _wait_for_reply(widget, posted["messages"][0]["id"])
        assert "30 days" in reply["text"]
    finally:
        stop.set()
        worker.join(timeout=10)
    with tenant_context(tenant):
        assert Message.objects.get(pk=reply["id"]).reply_to_id == posted["messages"][0]["id"]


def test_one_publish_reaches_every_socket_of_every_group(settings: Any) -> None:
    layer = get_channel_layer()
    if not isinstance(layer, realtime.RedisChannelLayer):
        pytest.skip("needs the Redis channel layer (REDIS_URL)")

    async def run() -> list[dict[str, Any]]:
        a, b, c = [await layer.new_channel() for _ in range(3)]  # two sockets of one visitor, one agent
        await layer.group_add("chat.t0.visitor", a)
        await layer.group_add("chat.t0.visitor", b)
        await layer.group_add("chat.t0.c1", c)
        batch = [("chat.t0.visitor", {"kind": "message", "n": 1}), ("chat.t0.c1", {"kind": "message", "n": 1})]
        await realtime._send_all(layer, [*batch, ("chat.t0.visitor", {"kind": "state", "n": 2})])
        got = [await layer.receive(ch) for ch in (a, a, b, b, c)]
        for group, ch in (("chat.t0.visitor", a), ("chat.t0.visitor", b), ("chat.t0.c1", c)):
            await layer.group_discard(group, ch)
        return got

    got = async_to_sync(run)()
    assert [e["event"]["n"] for e in got] == [1, 2, 1, 2, 1]  # each socket in the order published
    assert {e["type"] for e in got} == {realtime.EVENT_TYPE}


@pytest.mark.django_db
def test_a_batch_runs_the_model_once_for_all_its_messages(
    settings: Any, monkeypatch: pytest.MonkeyPatch, widget_key: Any, tenant: Tenant, nobody_answers: None
) -> None:
    settings.CX_BOT_EMBEDDINGS = True
    embedder = bot_embedder()
    if embedder is None:
        pytest.skip("the embeddings extra is not installed")
    with tenant_context(tenant):
        for question, phrasings, answer in KB:
            faq_entry_create(question=question, phrasings=phrasings, answer=answer, rebuild=False)
        knowledge_changed()
    texts = ["when do my beans get here, batch test", "can I pay with a card, batch test", "hello there, batch test"]
    for text in texts:  # one visitor each, so no reply depends on another
        visitor = Widget(widget_key)
        visitor.start()
        visitor.say(text)
    forwarded: list[list[str]] = []
    real_forward = embedder._forward  # type: ignore[attr-defined]

    def counting_forward(batch: list[str]) -> Any:
        forwarded.append(list(batch))
        return real_forward(batch)

    monkeypatch.setattr(embedder, "_forward", counting_forward)
    written = _answer_all(tenant)
    assert [m.sender for m in written].count(Sender.BOT) == 3
    assert [sorted(t for t in batch if t in texts) for batch in forwarded if set(batch) & set(texts)] == [
        sorted(texts)
    ]  # one model call for the three messages, and none again for any of them


def test_a_process_that_answers_the_bot_itself_loads_its_model_at_start(settings: Any, monkeypatch: Any) -> None:
    from chatbot import knowledge
    from chatbot.engine.embeddings import SentenceTransformerEmbedder
    from chatbot.replies import bot_model_warm

    settings.CX_BOT_REPLIES = "worker"
    assert bot_model_warm() is None  # chat_bot_worker loads it there
    settings.CX_BOT_REPLIES, settings.CX_BOT_EMBEDDINGS = "inline", False
    assert bot_model_warm() is None  # lexical matching: no model
    settings.CX_BOT_EMBEDDINGS = True
    shared = knowledge.bot_embedder()
    if not isinstance(shared, SentenceTransformerEmbedder):
        pytest.skip("sentence-transformers or the packaged MiniLM model is not installed (embeddings extra)")
    fresh = SentenceTransformerEmbedder(shared.model_path, quantize=shared.quantize)  # not loaded yet
    monkeypatch.setattr(knowledge, "bot_embedder", lambda: fresh)
    warming = bot_model_warm()
    assert warming is not None
    warming.join(timeout=120)
    assert not warming.is_alive()
    assert fresh._model is not None and "warm up" in fresh._cache  # loaded and run before any visitor asked
