"""The bot's reply: right entry, personal answers, handoff, tenant thresholds, the previous index kept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chatbot import knowledge
from chatbot.bot import BotReply, bot_answer_entry, bot_reply
from chatbot.engine import ENGINE_REVISION, Turn
from chatbot.knowledge import bot_settings_get, bot_settings_update, faq_entry_create, faq_entry_delete
from chatbot.models import FaqEntry, IndexStatus, KnowledgeIndexVersion
from journeys.models import Customer, Order, OrderLine, OrderStatus, Product
from tenants.context import tenant_context
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def ask(text: str, customer: Customer | None = None, history: list[Turn] | None = None) -> BotReply:
    return bot_reply(customer=customer, history=history or [], text=text)


def test_answers_with_the_right_entry(engine_mode: str, kb: list[FaqEntry]) -> None:
    reply = ask("how long will shipping take")
    assert reply.decision["action"] == "answer"
    assert reply.decision["entry_id"] == kb[0].index_id
    assert reply.text == kb[0].answer
    assert reply.decision["engine"] == engine_mode
    assert reply.decision["index_version"] == KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE).pk
    assert not reply.handoff


def test_paraphrase_without_shared_words_needs_embeddings(kb: list[FaqEntry], settings: object) -> None:
    from chatbot.engine import get_embedder

    if get_embedder() is None:
        pytest.skip("embeddings extra not installed")
    reply = ask("when will my beans arrive")
    assert reply.decision["entry_id"] == kb[0].index_id, reply.decision["reason"]


def test_greets_an_identified_customer_by_name(lexical: None, kb: list[FaqEntry]) -> None:
    maria = Customer.objects.create(external_id="c-1", name="Maria Lopez", email="maria@example.com")
    assert ask("hello", customer=maria).text.startswith("Hi Maria!")
    anonymous = ask("hello")
    assert anonymous.decision["action"] == "small_talk"
    assert "Maria" not in anonymous.text


def test_order_status_from_the_customers_latest_order(lexical: None, kb: list[FaqEntry]) -> None:
    maria = Customer.objects.create(external_id="c-1", name="Maria Lopez")
    other = Customer.objects.create(external_id="c-2", name="Bob")
    now = timezone.now()
    Order.objects.create(
        external_id="A-100",
        customer=maria,
        placed_at=now - timedelta(days=9),
        currency="USD",
        status=OrderStatus.FULFILLED,
    )
    Order.objects.create(
        external_id="A-200", customer=maria, placed_at=now - timedelta(days=1), currency="USD", status=OrderStatus.PAID
    )
    Order.objects.create(external_id="B-999", customer=other, placed_at=now, currency="USD")
    reply = ask("where is my order?", customer=maria)
    assert reply.decision["intent"] == "order_status"
    assert reply.decision["order"] == "A-200"
    assert "A-200" in reply.text and "being prepared for shipping" in reply.text
    anonymous = ask("where is my order?")
    assert anonymous.decision["customer_known"] is False
    assert "A-200" not in anonymous.text and "B-999" not in anonymous.text


def _products() -> list[Product]:
    beans = Product.objects.create(sku="ETH-250", name="Ethiopia Guji 250g", price=Decimal("14.50"), currency="USD")
    blend = Product.objects.create(sku="HOUSE-1K", name="House Blend 1kg", price=Decimal("32.00"), currency="USD")
    Product.objects.create(sku="OUT-1", name="Sold-out Geisha", price=Decimal("60"), currency="USD", in_stock=False)
    return [beans, blend]


def test_recommends_only_with_consent(lexical: None, kb: list[FaqEntry]) -> None:
    _beans, blend = _products()
    buyer = Customer.objects.create(external_id="c-9", name="Sam")
    order = Order.objects.create(external_id="X-1", customer=buyer, placed_at=timezone.now(), currency="USD")
    OrderLine.objects.create(order=order, product=blend, quantity=5, unit_price=Decimal("32"))
    no_consent = Customer.objects.create(external_id="c-1", name="Maria")
    consent = Customer.objects.create(external_id="c-2", name="Ana", consent_personalization=True)

    refused = ask("can you recommend something?", customer=no_consent)
    assert refused.decision["intent"] == "product_suggestions"
    assert refused.decision["consent"] is False and refused.decision["products"] == []
    assert "House Blend" not in refused.text

    picks = ask("can you recommend something?", customer=consent)
    assert picks.decision["consent"] is True
    assert picks.decision["products"] == ["HOUSE-1K", "ETH-250"]  # best seller first, never out of stock
    assert "House Blend 1kg" in picks.text and "Sold-out" not in picks.text
    assert ask("can you recommend something?").decision["consent"] is False


def test_hands_off_when_asked_for_a_person(engine_mode: str, kb: list[FaqEntry]) -> None:
    reply = ask("I want to talk to a real person")
    assert reply.handoff
    assert reply.decision["action"] == "handoff"
    assert "asked for a person" in reply.decision["reason"]


def test_falls_back_then_hands_off_after_two_misses(lexical: None, kb: list[FaqEntry]) -> None:
    first = ask("what is the airspeed velocity of a swallow")
    assert first.decision["action"] == "fallback" and not first.handoff
    history = [Turn("visitor", "what is the airspeed velocity of a swallow"), Turn("bot", first.text, "fallback")]
    second = ask("who painted the mona lisa", history=history)
    assert second.handoff and "2 messages in a row" in second.decision["reason"]


def test_tenant_thresholds_apply(lexical: None, kb: list[FaqEntry]) -> None:
    assert ask("how long will shipping take").decision["action"] == "answer"
    bot_settings_update(bot_settings=bot_settings_get(), answer_threshold=0.99, clarify_threshold=0.05)
    reply = ask("how long will shipping take")
    assert reply.decision["action"] == "clarify"
    assert reply.buttons[0] == {"label": kb[0].question, "entry_id": kb[0].index_id}
    chosen = bot_answer_entry(entry_id=reply.buttons[0]["entry_id"])
    assert chosen is not None and chosen.text == kb[0].answer


def test_empty_knowledge_base_still_talks(in_tenant: Tenant, lexical: None) -> None:
    assert ask("hi").decision["action"] == "small_talk"
    reply = ask("how long does shipping take?")
    assert reply.decision["action"] == "fallback"
    assert reply.decision["index_version"] is None


def test_deleted_entry_is_never_answered(lexical: None, kb: list[FaqEntry], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knowledge, "index_rebuild_request", lambda **kw: None)  # keep the old index active
    faq_entry_delete(entry=kb[0])
    reply = ask("how long will shipping take")
    assert reply.decision["action"] == "fallback"
    assert "removed" in reply.decision["reason"]


def test_previous_index_answers_while_a_rebuild_runs(
    lexical: None, kb: list[FaqEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE)
    during: list[BotReply] = []
    real_build = knowledge.build_index

    def slow_build(*args: object, **kwargs: object) -> object:
        during.append(ask("how long will shipping take"))
        during.append(ask("do you roast decaf beans?"))
        assert KnowledgeIndexVersion.objects.filter(status=IndexStatus.BUILDING).count() == 1
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(knowledge, "build_index", slow_build)
    decaf = faq_entry_create(
        question="Do you roast decaf beans?",
        phrasings=["is there a decaf coffee", "decaffeinated options"],
        answer="Yes: our Swiss-water decaf from Colombia.",
    )
    assert during[0].decision["entry_id"] == kb[0].index_id
    assert during[0].decision["index_version"] == before.pk
    assert during[1].decision["entry_id"] != decaf.index_id  # not in the old index
    after = ask("do you roast decaf beans?")
    assert after.decision["entry_id"] == decaf.index_id
    assert after.decision["index_version"] != before.pk
    before.refresh_from_db()
    assert before.status == IndexStatus.RETIRED


def test_each_tenant_gets_its_own_index(lexical: None, kb: list[FaqEntry], other_tenant: Tenant) -> None:
    with tenant_context(other_tenant):
        scarves = faq_entry_create(question="Do you sell silk scarves?", answer="Yes, in six colours.")
        assert ask("how long will shipping take").decision["entry_id"] != kb[0].index_id
        assert ask("do you sell silk scarves").text == "Yes, in six colours."
    mine = ask("do you sell silk scarves")
    assert mine.decision["entry_id"] != scarves.index_id and mine.text != "Yes, in six colours."


def test_an_index_built_by_an_older_engine_is_rebuilt(lexical: None, kb: list[FaqEntry]) -> None:
    active = KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE)
    assert active.stats["engine_revision"] == ENGINE_REVISION
    assert knowledge.index_rebuild() is None  # up to date: nothing to do

    stats = {k: v for k, v in active.stats.items() if k != "engine_revision"}  # as stored before revisions
    KnowledgeIndexVersion.objects.filter(pk=active.pk).update(stats=stats)
    rebuilt = knowledge.index_rebuild()
    assert rebuilt is not None and rebuilt.status == IndexStatus.ACTIVE
    assert rebuilt.revision == active.revision and rebuilt.stats["engine_revision"] == ENGINE_REVISION
    assert ask("how long will shipping take").decision["index_version"] == rebuilt.pk


def test_the_bot_asks_for_a_rebuild_of_an_index_another_engine_built(lexical: None, kb: list[FaqEntry]) -> None:
    """An index built with another model or variant (CX_BOT_MODEL_QUANTIZE=auto on a CPU of another kind, say)
    keeps answering, and the bot that loads it requests the rebuild that replaces it, once."""
    from chatbot.bot import index_cache_clear
    from tenants.models import Job

    active = KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE)
    KnowledgeIndexVersion.objects.filter(pk=active.pk).update(engine_model="other/model#int8")
    index_cache_clear()  # a process that has not loaded it yet
    assert knowledge.index_rebuild_status()["up_to_date"] is False  # the dashboard says a rebuild is due
    jobs = Job.objects.filter(kind=knowledge.REBUILD_KIND)
    before = jobs.count()

    first = ask("how long will shipping take")
    assert first.decision["entry_id"] == kb[0].index_id and first.decision["index_version"] == active.pk
    assert jobs.count() == before + 1  # requested (and, jobs running inline in tests, built)
    rebuilt = KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE)
    assert rebuilt.pk != active.pk and rebuilt.engine_model == ""  # as this process builds: lexical
    assert ask("how long will shipping take").decision["index_version"] == rebuilt.pk
    assert knowledge.index_rebuild_status()["up_to_date"] is True
    ask("do you ship abroad")
    assert jobs.count() == before + 1  # the rebuilt index is current: nothing more asked
