"""Dashboard pages of the knowledge base: entries and articles, CSV import, engine status and bot
thresholds, and the unanswered-questions page that turns gaps into entries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from chatbot import knowledge
from chatbot.knowledge import KnowledgeError
from chatbot.models import Article, BotSettings, FaqEntry
from tenants.permissions import role_has
from tenants.views import member_required

MAX_CSV_BYTES = 5 * 1024 * 1024


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.replace("|", ",").split(",") if t.strip()]


class FaqEntryForm(forms.Form):
    question = forms.CharField(max_length=knowledge.QUESTION_MAX)
    phrasings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Other ways visitors ask this, one per line. More phrasings make the bot more reliable.",
    )
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. shipping, orders")
    active = forms.BooleanField(required=False, initial=True, help_text="Inactive entries are never answered.")


class ArticleForm(forms.Form):
    title = forms.CharField(max_length=knowledge.QUESTION_MAX)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Separate paragraphs with a blank line; the first paragraphs are what the bot quotes.",
    )
    tags = forms.CharField(required=False, help_text="Comma-separated")
    active = forms.BooleanField(required=False, initial=True)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8: question, phrasings (separated by |), answer, tags.")


class BotSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = BotSettings
        fields = ["answer_threshold", "clarify_threshold", "low_confidence_turns", "negative_sentiment", "frustration"]
        help_texts = {
            "answer_threshold": "Confidence (0–1) at or above which the bot answers with the best entry.",
            "clarify_threshold": "Between this and the answer threshold the bot offers the closest entries as buttons.",
            "low_confidence_turns": "Unanswered messages in a row before the bot hands over to a person.",
            "negative_sentiment": "Sentiment (−1 to 0) at or below which the bot hands over.",
            "frustration": "Frustration score (0–1: repeats, shouting, “third time”) at which the bot hands over.",
        }


def _can_edit(request: HttpRequest) -> bool:
    return role_has(request.membership.role, "data.write")  # type: ignore[attr-defined]


@member_required("dashboard.view")
def knowledge_list(request: HttpRequest) -> HttpResponse:
    query, kind = request.GET.get("q", "").strip()[:200], request.GET.get("kind", "")
    entries, articles = knowledge.knowledge_search(query=query, kind=kind)
    return render(
        request,
        "chatbot/knowledge/list.html",
        {
            "entries": entries[:500],
            "articles": articles[:200],
            "query": query,
            "kind": kind,
            "status": knowledge.index_rebuild_status(),
            "can_edit": _can_edit(request),
        },
    )


@member_required("dashboard.view")
def knowledge_status(request: HttpRequest) -> HttpResponse:
    """The engine and index status card (htmx polls it while a rebuild runs)."""
    context = {"status": knowledge.index_rebuild_status(), "can_edit": _can_edit(request)}
    return render(request, "chatbot/knowledge/_status.html", context)


@require_POST
@member_required("data.write")
def knowledge_rebuild(request: HttpRequest) -> HttpResponse:
    """Rebuild the bot's index now (an index another model built, or one whose last rebuild failed)."""
    knowledge.index_rebuild_request(created_by=request.user)  # type: ignore[arg-type]
    messages.success(request, "Rebuilding the bot's index; it keeps answering from the current one meanwhile.")
    return redirect("knowledge")


@member_required("data.write")
def faq_entry_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    entry = get_object_or_404(FaqEntry, pk=pk) if pk is not None else None
    initial: dict[str, Any] = {"active": True}
    if entry is not None:
        initial = {
            "question": entry.question,
            "phrasings": "\n".join(entry.phrasings),
            "answer": entry.answer,
            "tags": ", ".join(entry.tags),
            "active": entry.active,
        }
    form = FaqEntryForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {
            "question": data["question"],
            "answer": data["answer"],
            "phrasings": _lines(data["phrasings"]),
            "tags": _tags(data["tags"]),
            "active": data["active"],
            "created_by": request.user,
        }
        try:
            if entry is None:
                entry = knowledge.faq_entry_create(**values)
                messages.success(request, f"Entry “{entry.question}” created. The bot's index is being rebuilt.")
            else:
                knowledge.faq_entry_update(entry=entry, **values)
                messages.success(request, f"Entry “{entry.question}” saved. The bot's index is being rebuilt.")
        except KnowledgeError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("knowledge")
    return render(request, "chatbot/knowledge/entry_form.html", {"form": form, "entry": entry})


@member_required("data.write")
@require_POST
def faq_entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(FaqEntry, pk=pk)
    knowledge.faq_entry_delete(entry=entry, created_by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Entry “{entry.question}” deleted.")
    return redirect("knowledge")


@member_required("data.write")
def article_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    article = get_object_or_404(Article, pk=pk) if pk is not None else None
    initial: dict[str, Any] = {"active": True}
    if article is not None:
        initial = {
            "title": article.title,
            "body": article.body,
            "tags": ", ".join(article.tags),
            "active": article.active,
        }
    form = ArticleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {
            "title": data["title"],
            "body": data["body"],
            "tags": _tags(data["tags"]),
            "active": data["active"],
            "created_by": request.user,
        }
        try:
            if article is None:
                article = knowledge.article_create(**values)
            else:
                knowledge.article_update(article=article, **values)
        except KnowledgeError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Article “{article.title}” saved. The bot's index is being rebuilt.")
            return redirect("knowledge")
    return render(request, "chatbot/knowledge/article_form.html", {"form": form, "article": article})


@member_required("data.write")
@require_POST
def article_delete(request: HttpRequest, pk: int) -> HttpResponse:
    article = get_object_or_404(Article, pk=pk)
    knowledge.article_delete(article=article, created_by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Article “{article.title}” deleted.")
    return redirect("knowledge")


@member_required("data.write")
def knowledge_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            form.add_error("file", f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        else:
            try:
                report = knowledge.knowledge_import_csv(fh=upload, created_by=request.user)  # type: ignore[arg-type]
            except KnowledgeError as exc:
                form.add_error("file", str(exc))
    return render(request, "chatbot/knowledge/import.html", {"form": form, "report": report})


@member_required("dashboard.view")
def bot_settings(request: HttpRequest) -> HttpResponse:
    row = knowledge.bot_settings_get()
    form = BotSettingsForm(request.POST or None, instance=row)
    if request.method == "POST":
        if not role_has(request.membership.role, "settings.manage"):  # type: ignore[attr-defined]
            raise PermissionDenied("Your role cannot change the bot's settings.")
        if form.is_valid():
            try:
                knowledge.bot_settings_update(
                    bot_settings=knowledge.bot_settings_get(),
                    **{name: form.cleaned_data[name] for name in BotSettingsForm.Meta.fields},
                )
            except KnowledgeError as exc:
                form.add_error("clarify_threshold", str(exc))
            else:
                messages.success(request, "Bot settings saved. They apply to the next message.")
                return redirect("knowledge_bot_settings")
    return render(
        request,
        "chatbot/knowledge/bot_settings.html",
        {"form": form, "status": knowledge.index_rebuild_status(), "defaults": BotSettings()},
    )


# -- unanswered questions ---------------------------------------------------------------------------------------
@member_required("dashboard.view")
def unanswered(request: HttpRequest) -> HttpResponse:
    try:
        days = max(1, min(365, int(request.GET.get("days", "30"))))
    except ValueError:
        days = 30
    groups = knowledge.unanswered_groups(days=days)
    entries = FaqEntry.objects.filter(active=True).order_by("question").only("pk", "question")
    return render(
        request,
        "chatbot/unanswered/list.html",
        {"groups": groups, "entries": entries, "days": days, "can_edit": _can_edit(request)},
    )


@member_required("data.write")
@require_POST
def unanswered_create(request: HttpRequest) -> HttpResponse:
    question, answer = request.POST.get("question", ""), request.POST.get("answer", "")
    wordings = request.POST.getlist("wording")
    try:
        entry = knowledge.unanswered_to_entry(
            question=question,
            answer=answer,
            wordings=wordings,
            created_by=request.user,  # type: ignore[arg-type]
        )
    except KnowledgeError as exc:
        messages.error(request, f"The entry was not created: {exc}")
    else:
        messages.success(request, f"New entry “{entry.question}” with {len(entry.phrasings)} phrasings.")
    return redirect("unanswered")


@member_required("data.write")
@require_POST
def unanswered_add(request: HttpRequest) -> HttpResponse:
    try:
        pk = int(request.POST.get("entry", ""))
    except ValueError:
        messages.error(request, "Choose the entry to add these questions to.")
        return redirect("unanswered")
    entry = get_object_or_404(FaqEntry, pk=pk)
    try:
        added = knowledge.faq_entry_add_phrasings(
            entry=entry,
            phrasings=request.POST.getlist("wording"),
            created_by=request.user,  # type: ignore[arg-type]
        )
    except KnowledgeError as exc:
        messages.error(request, f"Nothing was added: {exc}")
    else:
        messages.success(request, f"Added {added} phrasing{'s' if added != 1 else ''} to “{entry.question}”.")
    return redirect("unanswered")
