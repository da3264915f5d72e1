"""Knowledge-base services: entries and articles, CSV import, the index rebuild job, bot settings.

Every change bumps the tenant's `BotSettings.kb_revision` and requests a rebuild. Requests coalesce: while
a rebuild job is queued, later changes ride on it (it reads the newest revision when it starts); a running
job never blocks answering, because the bot keeps serving the active index until the new one is switched
in, in one transaction, and only when it is newer than the active one.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from chatbot.engine import ENGINE_REVISION, Embedder, EngineInfo, build_index, engine_info, get_embedder
from chatbot.engine import Article as EngineArticle
from chatbot.engine import FaqEntry as EngineFaqEntry
from chatbot.engine.embeddings import INT8_SUFFIX, feature_encoder
from chatbot.models import Article, BotSettings, FaqEntry, IndexStatus, KnowledgeIndexVersion
from tenants.jobs import job_progress, job_start, job_task
from tenants.models import Job, JobStatus, User

logger = logging.getLogger(__name__)

REBUILD_KIND = "chatbot.knowledge_rebuild"
RETIRED_VERSIONS_KEPT = 2  # retired versions keep their bytes this long (for a quick look back), then lose them
QUESTION_MAX = 300
PHRASING_MAX = 300
MAX_PHRASINGS = 100
IMPORT_MAX_ROWS = 5000


class KnowledgeError(ValueError):
    """A knowledge-base change that cannot be made; the message is meant for the user."""


# -- engine ---------------------------------------------------------------------------------------------
def bot_embedder() -> Embedder | None:
    """The process-wide sentence embedder per settings, or None (lexical matching only)."""
    if not getattr(settings, "CX_BOT_EMBEDDINGS", True):
        return None
    return get_embedder(
        getattr(settings, "CX_BOT_MODEL", "") or None,
        getattr(settings, "CX_BOT_TORCH_THREADS", None),
        float(getattr(settings, "CX_BOT_BATCH_MS", 0.0) or 0.0),
        quantize=getattr(settings, "CX_BOT_MODEL_QUANTIZE", "auto"),
        runtime=getattr(settings, "CX_BOT_MODEL_RUNTIME", "auto"),
        onnx_cache_dir=getattr(settings, "CX_BOT_MODEL_CACHE", "") or None,
    )


def bot_engine_info() -> EngineInfo:
    """Whether the bot runs with sentence embeddings here, and why not when it does not (for the dashboard)."""
    if not getattr(settings, "CX_BOT_EMBEDDINGS", True):
        return EngineInfo("lexical", None, "embeddings are switched off (CX_BOT_EMBEDDINGS=false): lexical matching")
    return engine_info(getattr(settings, "CX_BOT_MODEL", "") or None)


# -- cleaning -------------------------------------------------------------------------------------------
def _clean_list(values: Iterable[Any], *, max_len: int, max_items: int, what: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        text = " ".join(str(value).split())
        if not text or text.lower() in seen:
            continue
        if len(text) > max_len:
            raise KnowledgeError(f"Each {what} must be at most {max_len} characters.")
        seen.add(text.lower())
        out.append(text)
    if len(out) > max_items:
        raise KnowledgeError(f"At most {max_items} {what}s per entry.")
    return out


def _clean_entry(
    *, question: str, answer: str, phrasings: Sequence[str], tags: Sequence[str]
) -> tuple[str, str, list[str], list[str]]:
    question = " ".join(question.split())
    answer = answer.strip()
    if not question:
        raise KnowledgeError("The question is required.")
    if len(question) > QUESTION_MAX:
        raise KnowledgeError(f"The question must be at most {QUESTION_MAX} characters.")
    if not answer:
        raise KnowledgeError("The answer is required.")
    clean_phrasings = [
        p
        for p in _clean_list(phrasings, max_len=PHRASING_MAX, max_items=MAX_PHRASINGS, what="phrasing")
        if p.lower() != question.lower()
    ]
    clean_tags = _clean_list((t.lower() for t in tags), max_len=40, max_items=20, what="tag")
    return question, answer, clean_phrasings, clean_tags


# -- settings and revision ------------------------------------------------------------------------------
def bot_settings_get() -> BotSettings:
    """The current tenant's bot settings, created with the engine's defaults on first use."""
    row, _ = BotSettings.objects.get_or_create()
    return row


def bot_settings_update(*, bot_settings: BotSettings, **values: Any) -> BotSettings:
    """Save new thresholds (already validated by the form or serializer). Clarify must not exceed answer."""
    for name, value in values.items():
        setattr(bot_settings, name, value)
    if bot_settings.clarify_threshold > bot_settings.answer_threshold:
        raise KnowledgeError("The clarify threshold must not be higher than the answer threshold.")
    bot_settings.updated = timezone.now()
    bot_settings.save()
    return bot_settings


def knowledge_changed(*, created_by: User | None = None) -> Job | None:
    """Record that the knowledge base changed and request a rebuild (coalesced with a queued one)."""
    bot_settings = bot_settings_get()
    BotSettings.objects.filter(pk=bot_settings.pk).update(kb_revision=F("kb_revision") + 1, updated=timezone.now())
    return index_rebuild_request(created_by=created_by)


def index_is_current(engine_model: str, stats: dict[str, Any]) -> bool:
    """Whether an index version was built as this process would build it now: with the same embedding model and
    variant (CX_BOT_MODEL, CX_BOT_MODEL_QUANTIZE, whether embeddings are on) and the current engine revision."""
    embedder = bot_embedder()
    model = embedder.name if embedder is not None else ""
    return engine_model == model and int(stats.get("engine_revision", 1)) >= ENGINE_REVISION


def index_rebuild_request(*, created_by: User | None = None) -> Job:
    """Start a rebuild job unless one is already waiting for a worker (it will include this change)."""
    queued = Job.objects.filter(kind=REBUILD_KIND, status=JobStatus.QUEUED).order_by("-created").first()
    if queued is not None:
        return queued
    return job_start(kind=REBUILD_KIND, created_by=created_by)


# -- entries and articles ---------------------------------------------------------------------------------
def faq_entry_create(
    *,
    question: str,
    answer: str,
    phrasings: Sequence[str] = (),
    tags: Sequence[str] = (),
    active: bool = True,
    created_by: User | None = None,
    rebuild: bool = True,
) -> FaqEntry:
    """Create an entry; raises KnowledgeError for an invalid one. Starts a rebuild unless `rebuild=False`."""
    question, answer, phrasings, tags = _clean_entry(question=question, answer=answer, phrasings=phrasings, tags=tags)
    entry = FaqEntry.objects.create(question=question, answer=answer, phrasings=phrasings, tags=tags, active=active)
    if rebuild:
        knowledge_changed(created_by=created_by)
    return entry


def faq_entry_update(
    *,
    entry: FaqEntry,
    question: str | None = None,
    answer: str | None = None,
    phrasings: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    active: bool | None = None,
    created_by: User | None = None,
    rebuild: bool = True,
) -> FaqEntry:
    """Change the given fields of an entry and start a rebuild."""
    question, answer, cleaned_phrasings, cleaned_tags = _clean_entry(
        question=entry.question if question is None else question,
        answer=entry.answer if answer is None else answer,
        phrasings=entry.phrasings if phrasings is None else phrasings,
        tags=entry.tags if tags is None else tags,
    )
    entry.question, entry.answer, entry.phrasings, entry.tags = question, answer, cleaned_phrasings, cleaned_tags
    if active is not None:
        entry.active = active
    entry.updated = timezone.now()
    entry.save()
    if rebuild:
        knowledge_changed(created_by=created_by)
    return entry


def faq_entry_add_phrasings(*, entry: FaqEntry, phrasings: Sequence[str], created_by: User | None = None) -> int:
    """Append new phrasings (duplicates ignored); returns how many were added. Starts a rebuild."""
    before = len(entry.phrasings)
    faq_entry_update(entry=entry, phrasings=[*entry.phrasings, *phrasings], created_by=created_by)
    return len(entry.phrasings) - before


def faq_entry_delete(*, entry: FaqEntry, created_by: User | None = None) -> None:
    entry.delete()
    knowledge_changed(created_by=created_by)


def _clean_article(*, title: str, body: str, tags: Sequence[str]) -> tuple[str, str, list[str]]:
    title = " ".join(title.split())
    body = body.strip()
    if not title:
        raise KnowledgeError("The title is required.")
    if len(title) > QUESTION_MAX:
        raise KnowledgeError(f"The title must be at most {QUESTION_MAX} characters.")
    if not body:
        raise KnowledgeError("The article body is required.")
    return title, body, _clean_list((t.lower() for t in tags), max_len=40, max_items=20, what="tag")


def article_create(
    *,
    title: str,
    body: str,
    tags: Sequence[str] = (),
    active: bool = True,
    created_by: User | None = None,
    rebuild: bool = True,
) -> Article:
    title, body, clean_tags = _clean_article(title=title, body=body, tags=tags)
    article = Article.objects.create(title=title, body=body, tags=clean_tags, active=active)
    if rebuild:
        knowledge_changed(created_by=created_by)
    return article


def article_update(
    *,
    article: Article,
    title: str | None = None,
    body: str | None = None,
    tags: Sequence[str] | None = None,
    active: bool | None = None,
    created_by: User | None = None,
) -> Article:
    article.title, article.body, article.tags = _clean_article(
        title=article.title if title is None else title,
        body=article.body if body is None else body,
        tags=article.tags if tags is None else tags,
    )
    if active is not None:
        article.active = active
    article.updated = timezone.now()
    article.save()
    knowledge_changed(created_by=created_by)
    return article


def article_delete(*, article: Article, created_by: User | None = None) -> None:
    article.delete()
    knowledge_changed(created_by=created_by)


def knowledge_search(*, query: str = "", kind: str = "") -> tuple[QuerySet[FaqEntry], QuerySet[Article]]:
    """Entries and articles whose text contains `query` (case-insensitive); `kind` faq|article narrows."""
    entries = FaqEntry.objects.order_by("question")
    articles = Article.objects.order_by("title")
    if query:
        entries = entries.filter(
            Q(question__icontains=query) | Q(answer__icontains=query) | Q(phrasings__icontains=query)
        )
        articles = articles.filter(Q(title__icontains=query) | Q(body__icontains=query))
    if kind == "faq":
        articles = articles.none()
    elif kind == "article":
        entries = entries.none()
    return entries, articles


# -- CSV import -------------------------------------------------------------------------------------------
@dataclass
class ImportRow:
    line: int
    status: str  # created | updated | error
    message: str
    question: str = ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def created(self) -> int:
        return self.count("created")

    @property
    def updated(self) -> int:
        return self.count("updated")

    @property
    def errors(self) -> int:
        return self.count("error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "errors": self.errors,
            "rows": [row.__dict__ for row in self.rows],
        }


def _split(cell: str, seps: str) -> list[str]:
    for sep in seps[1:]:
        cell = cell.replace(sep, seps[0])
    return [part.strip() for part in cell.split(seps[0]) if part.strip()]


def knowledge_import_csv(*, fh: IO[bytes], created_by: User | None = None) -> ImportReport:
    """Import FAQ entries from CSV columns question, phrasings (|-separated), answer, tags (| or ,).

    A header row is optional. An existing entry with the same question (any case) is updated; a bad row is
    reported with its line and reason and skipped. Raises KnowledgeError when the file cannot be read at all.
    One rebuild follows the whole import.
    """
    raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeError("The file is not UTF-8 text; save it as CSV UTF-8 and try again.") from exc
    if not text.strip():
        raise KnowledgeError("The file is empty.")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise KnowledgeError(f"The file is not valid CSV: {exc}") from exc
    start = 0
    if rows and [c.strip().lower() for c in rows[0][:1]] == ["question"]:
        start = 1
    if len(rows) - start > IMPORT_MAX_ROWS:
        raise KnowledgeError(f"At most {IMPORT_MAX_ROWS} rows per import; split the file.")
    existing = {e.question.lower(): e for e in FaqEntry.objects.all()}
    report = ImportReport()
    seen: set[str] = set()
    with transaction.atomic():
        for n, row in enumerate(rows[start:], start=start + 1):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 3 or len(row) > 4:
                report.rows.append(
                    ImportRow(
                        n, "error", f"expected 3 or 4 columns (question, phrasings, answer, tags), got {len(row)}"
                    )
                )
                continue
            question, phrasings_cell, answer = row[0], row[1], row[2]
            tags = _split(row[3], "|,") if len(row) == 4 else []
            try:
                question, answer, phrasings, clean_tags = _clean_entry(
                    question=question, answer=answer, phrasings=_split(phrasings_cell, "|"), tags=tags
                )
            except KnowledgeError as exc:
                report.rows.append(ImportRow(n, "error", str(exc), question.strip()[:80]))
                continue
            key = question.lower()
            if key in seen:
                report.rows.append(ImportRow(n, "error", "the same question appears earlier in the file", question))
                continue
            seen.add(key)
            entry = existing.get(key)
            if entry is None:
                entry = FaqEntry.objects.create(question=question, answer=answer, phrasings=phrasings, tags=clean_tags)
                existing[key] = entry
                report.rows.append(ImportRow(n, "created", f"{len(phrasings)} phrasings", question))
            else:
                entry.answer, entry.phrasings, entry.tags, entry.updated = answer, phrasings, clean_tags, timezone.now()
                entry.save(update_fields=["answer", "phrasings", "tags", "updated"])
                report.rows.append(ImportRow(n, "updated", f"{len(phrasings)} phrasings", question))
        if report.created or report.updated:
            knowledge_changed(created_by=created_by)
    return report


# -- index rebuild ----------------------------------------------------------------------------------------
def active_index_version() -> KnowledgeIndexVersion | None:
    """The current tenant's active index version (without its bytes)."""
    return KnowledgeIndexVersion.objects.filter(status=IndexStatus.ACTIVE).defer("data").first()


def _engine_inputs() -> tuple[list[EngineFaqEntry], list[EngineArticle]]:
    entries = [
        EngineFaqEntry(id=e.index_id, question=e.question, phrasings=list(e.phrasings), answer=e.answer, tags=e.tags)
        for e in FaqEntry.objects.filter(active=True).order_by("pk")
    ]
    articles = [
        EngineArticle(id=a.index_id, title=a.title, body=a.body, tags=a.tags)
        for a in Article.objects.filter(active=True).order_by("pk")
    ]
    return entries, articles


def index_rebuild(*, job: Job | None = None) -> KnowledgeIndexVersion | None:
    """Build the index of the current knowledge base and make it active if it is the newest.

    Returns None when the active index is already built from the current revision with the current engine.
    The active index stays in place (and answering) until the new one is written whole and switched to.
    """
    revision = bot_settings_get().kb_revision
    embedder = bot_embedder()
    model = embedder.name if embedder is not None else ""
    active = active_index_version()
    if active is not None and active.revision >= revision and index_is_current(active.engine_model, active.stats):
        return None
    entries, articles = _engine_inputs()
    version = KnowledgeIndexVersion.objects.create(
        status=IndexStatus.BUILDING,
        revision=revision,
        entries_count=len(entries),
        articles_count=len(articles),
        engine_mode="semantic" if embedder is not None else "lexical",
        engine_model=model,
        job=job,
    )
    if job is not None:
        job_progress(job, 10, f"Building the index of {len(entries)} entries and {len(articles)} articles")
    try:
        index = build_index(entries, articles, embedder=embedder)
        data = index.to_bytes()
    except Exception as exc:
        KnowledgeIndexVersion.objects.filter(pk=version.pk).update(
            status=IndexStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000]
        )
        raise
    if job is not None:
        job_progress(job, 90, "Switching to the new index")
    with transaction.atomic():
        BotSettings.objects.select_for_update().filter(tenant_id=version.tenant_id).first()  # one switch at a time
        current = KnowledgeIndexVersion.objects.filter(status=IndexStatus.ACTIVE).defer("data").first()
        version.data = data
        version.stats = {**index.stats, "bytes": len(data), "engine_revision": index.engine_revision}
        if current is not None and current.revision > revision:
            version.status = IndexStatus.RETIRED  # a newer build finished first; never go backwards
            version.error = f"superseded by #{current.pk}"
            version.data = None
            version.save()
            return version
        if current is not None:
            KnowledgeIndexVersion.objects.filter(pk=current.pk).update(status=IndexStatus.RETIRED)
        version.status, version.activated_at = IndexStatus.ACTIVE, timezone.now()
        version.save()
        old = KnowledgeIndexVersion.objects.filter(status=IndexStatus.RETIRED).exclude(data=None).order_by("-pk")
        stale = list(old.values_list("pk", flat=True)[RETIRED_VERSIONS_KEPT:])
        if stale:
            KnowledgeIndexVersion.objects.filter(pk__in=stale).update(data=None)
    return version


@job_task(kind=REBUILD_KIND, label="Knowledge base index rebuild", queue="ml", time_limit=1800)
def knowledge_rebuild_task(job: Job) -> dict[str, Any]:
    """Rebuild the tenant's knowledge index (see `index_rebuild`)."""
    version = index_rebuild(job=job)
    if version is None:
        return {"skipped": "the active index is already up to date"}
    return {
        "version": version.pk,
        "status": version.status,
        "entries": version.entries_count,
        "articles": version.articles_count,
        "engine": version.engine_mode,
        "build_seconds": version.stats.get("build_seconds"),
    }


def index_rebuild_status() -> dict[str, Any]:
    """What the dashboard and API show: active version, a rebuild in progress, the latest failure."""
    active = active_index_version()
    rebuilding = (
        Job.objects.filter(kind=REBUILD_KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .order_by("-created")
        .first()
    )
    last_failed = Job.objects.filter(kind=REBUILD_KIND, status=JobStatus.FAILED).order_by("-created").first()
    bot_settings = bot_settings_get()
    info = bot_engine_info()
    embedder = bot_embedder() if info.mode == "semantic" else None
    variant = None if embedder is None else "int8" if embedder.name.endswith(INT8_SUFFIX) else "float"
    runtime = getattr(feature_encoder(embedder), "runtime", None) if embedder is not None else None
    configured = getattr(settings, "CX_BOT_MODEL", "")
    label = None if info.model is None else configured or "all-MiniLM-L6-v2, packaged with the product"
    return {
        "engine": {
            "mode": info.mode,
            "model": info.model,
            "label": label,
            "variant": variant,
            "runtime": runtime,
            "reason": info.reason,
        },
        "revision": bot_settings.kb_revision,
        # Built from the latest revision, by this engine (another model or variant's index awaits its rebuild).
        "up_to_date": active is not None
        and active.revision >= bot_settings.kb_revision
        and index_is_current(active.engine_model, active.stats),
        "active": None
        if active is None
        else {
            "id": active.pk,
            "revision": active.revision,
            "entries": active.entries_count,
            "articles": active.articles_count,
            "engine": active.engine_mode,
            "model": active.engine_model,
            "activated_at": active.activated_at,
            "build_seconds": active.stats.get("build_seconds"),
        },
        "rebuilding": None
        if rebuilding is None
        else {"job": rebuilding.pk, "status": rebuilding.status, "progress": rebuilding.progress},
        "last_failure": None
        if last_failed is None or (active is not None and active.created > last_failed.created)
        else {"job": last_failed.pk, "message": last_failed.message, "at": last_failed.finished_at},
    }


# -- unanswered questions -----------------------------------------------------------------------------------
UNANSWERED_ACTIONS = ("fallback", "handoff")
UNANSWERED_MAX_MESSAGES = 400
MAX_NEW_PHRASINGS = 25


@dataclass
class UnansweredGroup:
    """Visitor questions the bot could not answer that mean the same thing, with what it could offer."""

    question: str  # the group's most central wording
    count: int
    examples: list[str]
    wordings: list[str]  # every distinct wording (up to MAX_NEW_PHRASINGS): the phrasings a conversion adds
    last_asked: Any
    suggested_entry: FaqEntry | None = None  # the entry the bot thought closest most often
    reasons: list[str] = field(default_factory=list)


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).strip(" ?!.")


def unanswered_groups(*, days: int = 30) -> list[UnansweredGroup]:
    """Visitor messages of the last `days` whose bot reply was a fallback or a handoff (not a request for a
    person), grouped by similarity, biggest group first. Wordings already in the knowledge base are left out,
    so a group disappears once it is turned into an entry or added to one."""
    from django.db.models import OuterRef, Subquery

    from chatbot.models import Message, Sender

    since = timezone.now() - timedelta(days=days)
    asked = Message.objects.filter(
        conversation=OuterRef("conversation"), sender=Sender.VISITOR, pk__lt=OuterRef("pk")
    ).order_by("-pk")
    replies = (
        Message.objects.filter(sender=Sender.BOT, created__gte=since, decision__action__in=UNANSWERED_ACTIONS)
        .exclude(decision__intent="human")
        .annotate(question_id=Subquery(asked.values("pk")[:1]), question=Subquery(asked.values("text")[:1]))
        .order_by("-pk")
        .values("question_id", "question", "decision", "created")[:UNANSWERED_MAX_MESSAGES]
    )
    from django.core.cache import cache

    from tenants.context import current_tenant_id

    latest = Message.objects.filter(sender=Sender.BOT).order_by("-pk").values_list("pk", flat=True).first()
    revision = bot_settings_get().kb_revision
    cache_key = f"cx:unanswered:{current_tenant_id()}:{days}:{latest}:{revision}:{timezone.now():%Y%m%d%H}"
    cached = cache.get(cache_key)
    if cached is not None:  # grouping embeds up to UNANSWERED_MAX_MESSAGES texts: reuse until anything changes
        return cached  # type: ignore[no-any-return]
    groups = _unanswered_groups(replies)
    cache.set(cache_key, groups, timeout=3600)
    return groups


def _unanswered_groups(replies: Any) -> list[UnansweredGroup]:
    from chatbot.engine.unanswered import group_questions

    known: set[str] = set()
    for question, phrasings in FaqEntry.objects.values_list("question", "phrasings"):
        known.add(_normal(question))
        known.update(_normal(p) for p in phrasings or [])
    rows: list[dict[str, Any]] = []
    seen_ids: set[int] = set()
    for row in replies:
        if row["question_id"] is None or row["question_id"] in seen_ids or _normal(row["question"] or "") in known:
            continue
        seen_ids.add(row["question_id"])
        rows.append(row)
    if not rows:
        return []
    texts = [" ".join(r["question"].split())[:300] for r in rows]
    embedder = bot_embedder()
    embeddings = embedder.encode(texts) if embedder is not None else None
    entries = {e.index_id: e for e in FaqEntry.objects.all()}
    groups: list[UnansweredGroup] = []
    for group in group_questions(texts, embeddings):
        votes: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for i in group.members:
            decision = rows[i]["decision"] or {}
            candidates = decision.get("candidates") or []
            if candidates and candidates[0].get("entry_id") in entries:
                votes[candidates[0]["entry_id"]] = votes.get(candidates[0]["entry_id"], 0) + 1
            reasons[decision.get("action", "")] = reasons.get(decision.get("action", ""), 0) + 1
        wordings: list[str] = []
        for i in sorted(group.members, key=lambda i: texts[i].lower()):
            if _normal(texts[i]) not in {_normal(w) for w in wordings}:
                wordings.append(texts[i])
        groups.append(
            UnansweredGroup(
                question=texts[group.representative],
                count=group.count,
                examples=[texts[i] for i in group.examples],
                wordings=wordings[:MAX_NEW_PHRASINGS],
                last_asked=max(rows[i]["created"] for i in group.members),
                suggested_entry=entries[max(votes, key=lambda k: votes[k])] if votes else None,
                reasons=[f"{n} × {action}" for action, n in sorted(reasons.items(), key=lambda kv: -kv[1])],
            )
        )
    return groups


def unanswered_to_entry(
    *, question: str, answer: str, wordings: Sequence[str], created_by: User | None = None
) -> FaqEntry:
    """Turn a group of unanswered wordings into a new FAQ entry (its wordings become the phrasings)."""
    return faq_entry_create(
        question=question, answer=answer, phrasings=list(wordings)[:MAX_NEW_PHRASINGS], created_by=created_by
    )
