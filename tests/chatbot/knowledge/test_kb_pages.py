"""Knowledge-base pages, the unanswered-questions page and its conversion actions, and tenant isolation."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from chatbot.knowledge import faq_entry_create, unanswered_groups
from chatbot.models import BotSettings, Conversation, FaqEntry, Message, Sender
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lexical(settings: object) -> None:
    settings.CX_BOT_EMBEDDINGS = False  # type: ignore[attr-defined]


def _unanswered(texts: list[str], action: str = "fallback", intent: str = "none") -> None:
    """One conversation per text: the visitor asks, the bot replies with `action`."""
    for n, text in enumerate(texts):
        conversation = Conversation.objects.create(visitor_id=f"cxw_{n}_{abs(hash(text))}")
        Message.objects.create(conversation=conversation, sender=Sender.VISITOR, text=text)
        Message.objects.create(
            conversation=conversation,
            sender=Sender.BOT,
            text="Sorry, I don't know.",
            decision={"action": action, "intent": intent, "reason": "no entry", "candidates": []},
        )


def test_list_create_edit_delete_entry(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.get("/knowledge/")
    assert page.status_code == 200
    assert b"lexical matching only" in page.content  # embeddings are off: the page says so
    response = owner_client.post(
        "/knowledge/entries/new/",
        {"question": "Do you roast decaf?", "phrasings": "decaf options\nis there decaf", "answer": "Yes.",
         "tags": "coffee, decaf", "active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    with tenant_context(tenant):
        entry = FaqEntry.objects.get()
        assert entry.phrasings == ["decaf options", "is there decaf"] and entry.tags == ["coffee", "decaf"]
    page = owner_client.get("/knowledge/?q=decaf")
    assert b"Do you roast decaf?" in page.content and b"Up to date" in page.content
    assert owner_client.get("/knowledge/?q=zebra").content.count(b"Do you roast decaf?") == 0
    response = owner_client.post(f"/knowledge/entries/{entry.pk}/", {"question": "Do you roast decaf?", "answer": ""})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert owner_client.post(f"/knowledge/entries/{entry.pk}/delete/").status_code == 302
    with tenant_context(tenant):
        assert not FaqEntry.objects.exists()


def test_article_and_bot_settings(owner_client: Client, tenant: Tenant) -> None:
    response = owner_client.post(
        "/knowledge/articles/new/",
        {"title": "Brewing guide", "body": "Use fresh beans.\n\nGrind just before.", "active": "on"},
    )
    assert response.status_code == 302
    assert b"Brewing guide" in owner_client.get("/knowledge/").content
    bad = owner_client.post(
        "/knowledge/bot-settings/",
        {"answer_threshold": "0.3", "clarify_threshold": "0.5", "low_confidence_turns": "2",
         "negative_sentiment": "-0.6", "frustration": "0.7"},
    )  # fmt: skip
    assert bad.status_code == 200 and b"must not be higher than the answer threshold" in bad.content
    ok = owner_client.post(
        "/knowledge/bot-settings/",
        {"answer_threshold": "0.4", "clarify_threshold": "0.2", "low_confidence_turns": "3",
         "negative_sentiment": "-0.5", "frustration": "0.8"},
    )  # fmt: skip
    assert ok.status_code == 302


def test_csv_import_reports_each_row(owner_client: Client, tenant: Tenant) -> None:
    with tenant_context(tenant):
        faq_entry_create(question="How long does shipping take?", answer="Old answer.")
    csv_text = (
        "question,phrasings,answer,tags\n"
        "How long does shipping take?,when will it arrive|delivery time,2-4 days.,shipping\n"
        'Do you sell gift cards?,gift card|voucher,"Yes, from $10.",gifts|cards\n'
        ",orphan phrasing,An answer without a question,\n"
        "Is there parking?,,,\n"
        "just one column\n"
        "Do you sell gift cards?,again,Duplicate row,\n"
    )
    upload = io.BytesIO(csv_text.encode())
    upload.name = "faq.csv"
    response = owner_client.post("/knowledge/import/", {"file": upload})
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.updated, report.errors) == (1, 1, 4)
    by_line = {row.line: row for row in report.rows}
    assert by_line[2].status == "updated" and by_line[3].status == "created"
    assert "question is required" in by_line[4].message
    assert "answer is required" in by_line[5].message
    assert "expected 3 or 4 columns" in by_line[6].message
    assert "appears earlier" in by_line[7].message
    assert b"1</strong> created" in response.content
    with tenant_context(tenant):
        shipping = FaqEntry.objects.get(question="How long does shipping take?")
        assert shipping.answer == "2-4 days." and shipping.phrasings == ["when will it arrive", "delivery time"]
        assert FaqEntry.objects.get(question="Do you sell gift cards?").tags == ["gifts", "cards"]
    latin1 = io.BytesIO("question,phrasings,answer\nCafé?,,Oui\n".encode("latin-1"))
    latin1.name = "bad.csv"
    response = owner_client.post("/knowledge/import/", {"file": latin1})
    assert b"not UTF-8" in response.content


def test_unanswered_groups_and_turning_a_group_into_an_entry(owner_client: Client, tenant: Tenant) -> None:
    with tenant_context(tenant):
        _unanswered(["do you have oat milk?", "Do you have oat milk", "do you offer oat milk", "is oat milk extra"])
        _unanswered(["can I bring my dog"], action="handoff")
        _unanswered(["I want a human"], action="handoff", intent="human")  # asked for a person: not a gap
        groups = unanswered_groups()
    assert [g.count for g in groups] == [4, 1]
    assert groups[0].question.lower().startswith("do you")
    page = owner_client.get("/knowledge/unanswered/")
    assert page.status_code == 200
    assert b"asked 4 times" in page.content and b"I want a human" not in page.content
    response = owner_client.post(
        "/knowledge/unanswered/create/",
        {"question": "Do you have oat milk?", "answer": "Yes, oat milk is free.",
         "wording": [w for w in groups[0].wordings]},
    )  # fmt: skip
    assert response.status_code == 302
    with tenant_context(tenant):
        entry = FaqEntry.objects.get(question="Do you have oat milk?")
        assert entry.answer == "Yes, oat milk is free." and len(entry.phrasings) == 3
        remaining = unanswered_groups()
    assert [g.question for g in remaining] == ["can I bring my dog"]  # the converted group is gone
    response = owner_client.post("/knowledge/unanswered/add/", {"entry": entry.pk, "wording": ["can I bring my dog"]})
    assert response.status_code == 302
    with tenant_context(tenant):
        entry.refresh_from_db()
        assert "can I bring my dog" in entry.phrasings
        assert unanswered_groups() == []


def test_roles(agent: User, analyst: User, tenant: Tenant) -> None:
    with tenant_context(tenant):
        entry = faq_entry_create(question="Q?", answer="A.")
    reader = client_for(analyst)
    assert reader.get("/knowledge/").status_code == 200
    assert reader.get("/knowledge/unanswered/").status_code == 200
    assert reader.get("/knowledge/entries/new/").status_code == 403
    assert reader.post(f"/knowledge/entries/{entry.pk}/delete/").status_code == 403
    assert reader.post("/knowledge/bot-settings/", {"answer_threshold": "0.1"}).status_code == 403
    assert client_for(agent).post("/knowledge/unanswered/create/", {"question": "x", "answer": "y"}).status_code == 403


def test_other_tenant_gets_404_and_sees_nothing(owner_client: Client, other_client: Client, tenant: Tenant) -> None:
    with tenant_context(tenant):
        entry = faq_entry_create(question="Secret roast schedule?", answer="Tuesdays.")
        _unanswered(["where do you source your beans"])
    owner_client.post("/knowledge/articles/new/", {"title": "Private article", "body": "Body.", "active": "on"})
    with tenant_context(tenant):
        from chatbot.models import Article

        article = Article.objects.get()
    assert other_client.get(f"/knowledge/entries/{entry.pk}/").status_code == 404
    assert other_client.post(f"/knowledge/entries/{entry.pk}/delete/").status_code == 404
    assert other_client.get(f"/knowledge/articles/{article.pk}/").status_code == 404
    assert other_client.post(f"/knowledge/articles/{article.pk}/delete/").status_code == 404
    assert other_client.post("/knowledge/unanswered/add/", {"entry": entry.pk, "wording": ["x"]}).status_code == 404
    listing = other_client.get("/knowledge/").content + other_client.get("/knowledge/unanswered/").content
    assert b"Secret roast" not in listing and b"Private article" not in listing and b"source your beans" not in listing
    with tenant_context(tenant):
        entry.refresh_from_db()
        assert entry.phrasings == []


def test_an_owner_rebuilds_an_index_that_is_not_up_to_date(
    owner_client: Client, analyst: User, other_client: Client, tenant: Tenant
) -> None:
    from chatbot.knowledge import REBUILD_KIND
    from tenants.models import Job

    with tenant_context(tenant):
        faq_entry_create(question="Do you roast decaf?", answer="Swiss water, weekly.")  # built, lexical
    assert b"Rebuild now" not in owner_client.get("/knowledge/").content  # up to date: nothing to do
    with tenant_context(tenant):
        FaqEntry.objects.update(answer="Swiss water, every week.")  # changed outside the services: no rebuild
        BotSettings.objects.update(kb_revision=99)
        before = Job.objects.filter(kind=REBUILD_KIND).count()
    page = owner_client.get("/knowledge/").content.decode()
    assert "Changes waiting for a rebuild" in page and "Rebuild now" in page
    assert "Rebuild now" not in client_for(analyst).get("/knowledge/").content.decode()
    assert client_for(analyst).post("/knowledge/rebuild/").status_code == 403
    assert owner_client.get("/knowledge/rebuild/").status_code == 405
    done = owner_client.post("/knowledge/rebuild/", follow=True)
    assert done.redirect_chain == [("/knowledge/", 302)] and "Rebuilding the bot" in done.content.decode()
    with tenant_context(tenant):
        assert Job.objects.filter(kind=REBUILD_KIND).count() == before + 1
    assert other_client.post("/knowledge/rebuild/").status_code == 302  # its own (empty) knowledge base only
    with tenant_context(tenant):
        assert Job.objects.filter(kind=REBUILD_KIND).count() == before + 1
