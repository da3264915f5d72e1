"""Knowledge base, unanswered questions and webhooks pages in a real browser (screenshots in test-artifacts/)."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, settings) -> object:  # type: ignore[no-untyped-def]
    from chatbot.demo_knowledge import ARTICLES, FAQ
    from chatbot.knowledge import article_create, faq_entry_create, knowledge_changed
    from tenants.context import tenant_context
    from tenants.services import tenant_create
    from tests.conftest import make_user

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CX_BOT_EMBEDDINGS = False  # lexical: fast to build; the page must say so
    user = make_user("kb@x.test")
    tenant = tenant_create(name="Driftwood Coffee Roasters", owner=user)
    with tenant_context(tenant):
        for question, phrasings, answer, tags in FAQ[:12]:
            faq_entry_create(question=question, phrasings=phrasings, answer=answer, tags=tags, rebuild=False)
        for title, body, tags in ARTICLES[:2]:
            article_create(title=title, body=body, tags=tags, rebuild=False)
        knowledge_changed()
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("kb@x.test")
    page.get_by_label("Password:").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Driftwood Coffee Roasters").wait_for()
    return tenant


def test_knowledge_base_page(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, settings)
    page.get_by_role("link", name="Knowledge base").click()
    page.get_by_role("heading", name="Knowledge base", exact=True).wait_for()
    status = page.locator("#kb-status")
    assert "lexical matching only" in status.inner_text()
    assert "Up to date" in status.inner_text()
    assert "12 FAQ entries and 2 articles" in status.inner_text()
    page.get_by_role("link", name="New FAQ entry").click()
    page.get_by_label("Question").fill("Do you sell matcha?")
    page.get_by_label("Phrasings").fill("matcha latte\nmatcha powder")
    page.get_by_label("Answer").fill("Yes: ceremonial-grade matcha from Uji, in the café and online.")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Entry “Do you sell matcha?” created").wait_for()
    assert "13 FAQ entries" in page.locator("#kb-status").inner_text()
    page.get_by_role("searchbox", name="Search").fill("matcha")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#faq-title + table tbody tr")
    assert rows.count() == 1 and "Do you sell matcha?" in rows.first.inner_text()
    page.goto("/knowledge/")
    screenshot(page, "knowledge-base")
    page.get_by_role("link", name="Bot settings").click()
    page.get_by_label("Answer threshold").fill("0.35")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Bot settings saved").wait_for()


def test_unanswered_page_turns_a_group_into_an_entry(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    from chatbot.demo_knowledge import UNANSWERED
    from chatbot.models import Conversation, FaqEntry, Message, Sender
    from tenants.context import tenant_context

    tenant = _sign_in(page, settings)
    with tenant_context(tenant):  # type: ignore[arg-type]
        for n, text in enumerate(UNANSWERED):
            conversation = Conversation.objects.create(visitor_id=f"cxw_browser_{n}")
            Message.objects.create(conversation=conversation, sender=Sender.VISITOR, text=text)
            Message.objects.create(
                conversation=conversation, sender=Sender.BOT, text="Sorry.",
                decision={"action": "fallback" if n % 2 else "handoff", "intent": "none", "candidates": []},
            )  # fmt: skip
    page.goto("/knowledge/unanswered/")
    groups = page.locator("section.unanswered-group")
    groups.first.wait_for()
    # lexical grouping joins at least three of the four matcha wordings (embeddings join all four)
    assert re.search(r"asked [34] times", groups.first.inner_text())
    first_heading = groups.first.locator("h2").inner_text()
    assert "matcha" in first_heading.lower()
    screenshot(page, "unanswered-questions")
    count_before = groups.count()
    assert groups.first.locator("details").get_attribute("open") is not None  # the biggest gap is open
    groups.first.get_by_label("Answer").fill("Yes: ceremonial-grade matcha, as a latte or as powder to take home.")
    groups.first.get_by_role("button", name="Create entry").click()
    page.get_by_text("New entry").wait_for()
    assert groups.count() == count_before - 1
    with tenant_context(tenant):  # type: ignore[arg-type]
        entry = FaqEntry.objects.get(question__icontains="matcha")
        assert entry.answer.startswith("Yes: ceremonial-grade matcha") and entry.phrasings  # the group's wordings


def test_webhooks_settings_page(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, settings)
    page.goto("/settings/webhooks/")
    page.get_by_label("Endpoint URL").fill("https://hooks.example.com/cx")
    page.get_by_label("Description").fill("CRM sync")
    page.get_by_label("message.created — A message was sent in a conversation").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("whsec_")
    screenshot(page, "webhooks-settings")
    page.reload()
    assert page.locator("#new-secret").count() == 0


def test_the_index_card_says_what_computes_the_model(page, live_server, settings) -> None:  # type: ignore[no-untyped-def]
    from chatbot.engine import get_embedder

    embedder = get_embedder()
    if embedder is None:
        pytest.skip("embeddings extra not installed")
    _sign_in(page, settings)  # its index is lexical
    settings.CX_BOT_EMBEDDINGS = True
    settings.CX_BOT_MODEL_QUANTIZE = "false"
    settings.CX_BOT_MODEL_RUNTIME = "auto"
    page.goto("/knowledge/")
    status = page.locator("#kb-status").inner_text()
    assert "Understands paraphrases" in status and "all-MiniLM-L6-v2, packaged with the product" in status
    assert "The model runs at full precision (float), in ONNX Runtime." in status
    assert "Changes waiting for a rebuild" in status  # a lexical index, now that the model is on
    screenshot(page, "knowledge-base-semantic")
    page.get_by_role("button", name="Rebuild now").click()
    page.get_by_text("Rebuilding the bot's index").wait_for()
    card = page.locator("#kb-status")
    card.get_by_text("Up to date").wait_for(timeout=60_000)  # the card polls while the job runs
    assert "semantic mode" in card.inner_text() and card.get_by_role("button", name="Rebuild now").count() == 0
