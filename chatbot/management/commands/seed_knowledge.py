"""Seed a tenant's knowledge base with the Driftwood Coffee Roasters FAQ and articles (idempotent), build its
index, and add a few unanswered visitor questions so the learning loop has something to show."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F

from chatbot.demo_knowledge import ARTICLES, FAQ, UNANSWERED
from chatbot.knowledge import article_create, bot_settings_get, faq_entry_create, index_rebuild
from chatbot.models import Article, BotSettings, Conversation, FaqEntry, Message, Sender
from tenants.context import tenant_context
from tenants.models import Tenant

VISITOR_PREFIX = "cxw_demo_unanswered_"


class Command(BaseCommand):
    help = "Seed the demo knowledge base (FAQ entries, articles) of a tenant and build its index."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="demo", help="tenant slug")
        parser.add_argument("--no-unanswered", action="store_true", help="skip the sample unanswered questions")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}; run setup_demo first.")
        with tenant_context(tenant):
            with transaction.atomic():
                created = self._seed()
                if not options["no_unanswered"]:
                    self._unanswered()
            version = index_rebuild()  # now, not in a background thread that would die with this command
        built = f"index #{version.pk} ({version.engine_mode})" if version else "index already up to date"
        self.stdout.write(f"Knowledge base of {tenant.name}: {created} new entries/articles; {built}.")

    def _seed(self) -> int:
        created = 0
        existing = set(FaqEntry.objects.values_list("question", flat=True))
        for question, phrasings, answer, tags in FAQ:
            if question not in existing:
                faq_entry_create(question=question, phrasings=phrasings, answer=answer, tags=tags, rebuild=False)
                created += 1
        titles = set(Article.objects.values_list("title", flat=True))
        for title, body, tags in ARTICLES:
            if title not in titles:
                article_create(title=title, body=body, tags=tags, rebuild=False)
                created += 1
        if created:
            bot_settings_get()
            BotSettings.objects.update(kb_revision=F("kb_revision") + 1)
        return created

    def _unanswered(self) -> None:
        if Conversation.objects.filter(visitor_id__startswith=VISITOR_PREFIX).exists():
            return
        for n, text in enumerate(UNANSWERED):
            conversation = Conversation.objects.create(visitor_id=f"{VISITOR_PREFIX}{n}")
            Message.objects.create(conversation=conversation, sender=Sender.VISITOR, text=text)
            Message.objects.create(
                conversation=conversation,
                sender=Sender.BOT,
                text="Sorry, I don't know the answer to that yet.",
                decision={"action": "fallback", "intent": "none", "reason": "no entry matches well enough",
                          "candidates": [], "confidence": 0.1},
            )  # fmt: skip
