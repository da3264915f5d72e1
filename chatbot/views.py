"""The agent inbox (owners, admins, agents), the widget settings page and the demo storefront."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from chatbot import realtime, selectors, services
from chatbot.hours import DAYS, hours_format_day, hours_parse_day
from chatbot.models import AgentPresence, CannedResponse, Conversation, ResolvedPolicy, WidgetSettings
from tenants.context import tenant_context
from tenants.models import Tenant, User, WidgetKey
from tenants.views import member_required


def _view_name(request: HttpRequest) -> str:
    view = request.GET.get("view", "open")
    return view if view in selectors.INBOX_VIEWS else "open"


def _list_context(request: HttpRequest) -> dict[str, Any]:
    view, q = _view_name(request), request.GET.get("q", "")[:200]
    conversations = list(selectors.conversation_list(view=view, user=request.user, q=q)[:100])  # type: ignore[arg-type]
    return {"view": view, "q": q, "conversations": conversations, "counts": selectors.inbox_counts(user=request.user)}  # type: ignore[arg-type]


@member_required("conversations.work")
def inbox(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    context = _list_context(request)
    if pk is not None:
        conversation = get_object_or_404(Conversation.objects.select_related("customer", "assignee"), pk=pk)
        transcript = selectors.messages_after(conversation=conversation, limit=1000)
        context.update(
            conversation=conversation,
            transcript=transcript,
            last_id=transcript[-1].pk if transcript else 0,
            context=selectors.conversation_context(conversation=conversation),
            canned=[{"shortcut": c.shortcut, "text": c.text} for c in CannedResponse.objects.order_by("shortcut")],
        )
    presence = AgentPresence.objects.filter(user=request.user).first()
    context.update(available=presence is None or presence.available, look=services.widget_settings_get())
    return render(request, "chatbot/inbox.html", context)


@member_required("conversations.work")
def inbox_list(request: HttpRequest) -> HttpResponse:
    """The conversation list alone (the inbox refreshes it when the socket says something changed)."""
    context = _list_context(request)
    context["selected"] = int(request.GET.get("selected") or 0) if request.GET.get("selected", "").isdigit() else 0
    return render(request, "chatbot/_conversation_list.html", context)


def _error(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@require_POST
@member_required("conversations.work")
def inbox_reply(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = get_object_or_404(Conversation, pk=pk)
    wants_json = request.content_type == "application/json"
    agent: User = request.user  # type: ignore[assignment]  # member_required: signed in
    try:
        data = json.loads(request.body or b"{}") if wants_json else request.POST
        if not isinstance(data, dict) and wants_json:
            raise json.JSONDecodeError("not an object", "", 0)
        text = str(data.get("text", ""))
        if data.get("note") in (True, "on", "1", "true"):
            message = services.agent_note_add(conversation=conversation, author=agent, text=text)
        else:
            client_id = str(data.get("client_id") or "") or None
            message = services.agent_message_post(
                conversation=conversation, author=agent, text=text, client_id=client_id
            )
    except (ValidationError, json.JSONDecodeError) as exc:
        text = _error(exc) if isinstance(exc, ValidationError) else 'Send a JSON object like {"text": "..."}.'
        if wants_json:
            return JsonResponse({"error": {"code": "validation_error", "message": text, "fields": {}}}, status=400)
        messages.error(request, text)
        return redirect("inbox_conversation", pk=pk)
    if wants_json:
        return JsonResponse({"message": realtime.message_inbox_dict(message)}, status=201)
    return redirect("inbox_conversation", pk=pk)


def _action(request: HttpRequest, pk: int, run: Any, done: str) -> HttpResponse:
    conversation = get_object_or_404(Conversation, pk=pk)
    try:
        run(conversation)
        messages.success(request, done)
    except ValidationError as exc:
        messages.error(request, _error(exc))
    return redirect("inbox_conversation", pk=pk)


@require_POST
@member_required("conversations.work")
def inbox_assign(request: HttpRequest, pk: int) -> HttpResponse:
    agent: User = request.user  # type: ignore[assignment]  # member_required: signed in
    return _action(request, pk, lambda c: services.conversation_assign(conversation=c, agent=agent), "Assigned to you.")


@require_POST
@member_required("conversations.work")
def inbox_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, lambda c: services.conversation_resolve(conversation=c), "Resolved.")


@require_POST
@member_required("conversations.work")
def inbox_hand_back(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(request, pk, lambda c: services.conversation_hand_back(conversation=c), "Handed back to the bot.")


@require_POST
@member_required("conversations.work")
def inbox_availability(request: HttpRequest) -> HttpResponse:
    """The agent's availability toggle: off, auto-assignment passes them by; on, they get waiting ones."""
    available = request.POST.get("available") == "on"
    services.agent_presence_touch(agent=request.user, available=available)  # type: ignore[arg-type]
    messages.success(request, "You are available for new conversations." if available else "You are away.")
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/inbox/") else "inbox")


@member_required("settings.manage")
def canned_responses(request: HttpRequest) -> HttpResponse:
    """List and add canned responses."""
    if request.method == "POST":
        try:
            services.canned_response_save(shortcut=request.POST.get("shortcut", ""), text=request.POST.get("text", ""))
            messages.success(request, "Canned response added.")
            return redirect("canned_responses")
        except ValidationError as exc:
            messages.error(request, _error(exc))
    form = request.POST if request.method == "POST" else {}
    canned = CannedResponse.objects.order_by("shortcut")
    return render(request, "chatbot/canned_responses.html", {"canned": canned, "form": form})


@member_required("settings.manage")
def canned_response_edit(request: HttpRequest, pk: int) -> HttpResponse:
    canned = get_object_or_404(CannedResponse, pk=pk)
    if request.method == "POST":
        if request.POST.get("delete"):
            services.canned_response_delete(canned=canned)
            messages.success(request, f"/{canned.shortcut} deleted.")
            return redirect("canned_responses")
        try:
            services.canned_response_save(
                canned=canned, shortcut=request.POST.get("shortcut", ""), text=request.POST.get("text", "")
            )
            messages.success(request, "Canned response saved.")
            return redirect("canned_responses")
        except ValidationError as exc:
            messages.error(request, _error(exc))
            canned.refresh_from_db()
    return render(request, "chatbot/canned_response_edit.html", {"canned": canned})


@member_required("settings.manage")
def widget_settings(request: HttpRequest) -> HttpResponse:
    """Widget look, allowed origins, identity verification, and the snippet to paste."""
    look = services.widget_settings_get()
    key = services.tenant_widget_ready()
    if request.method == "POST":
        try:
            with transaction.atomic():
                _widget_settings_save(request, look, key)
            services.conversations_auto_assign()  # switched on, or a higher cap: the queue moves now
            messages.success(request, "Widget settings saved.")
            return redirect("widget_settings")
        except ValidationError as exc:
            messages.error(request, _error(exc))
            look.refresh_from_db()
            key.refresh_from_db()
    snippet = f'<script src="{settings.SITE_URL}/static/widget/cx.js" data-key="{key.key}" async></script>'
    hours = [(i, day, hours_format_day(look.business_hours.get(str(i), []))) for i, day in enumerate(DAYS)]
    return render(
        request,
        "chatbot/widget_settings.html",
        {"look": look, "key": key, "snippet": snippet, "policies": ResolvedPolicy.choices, "hours": hours},
    )


def _widget_settings_save(request: HttpRequest, look: WidgetSettings, key: WidgetKey) -> None:
    look.bot_name = request.POST.get("bot_name", "").strip()[:60] or "Assistant"
    look.color = request.POST.get("color", look.color).strip()[:7]
    look.greeting = request.POST.get("greeting", "").strip()[:300] or look.greeting
    look.avatar_url = request.POST.get("avatar_url", "").strip()[:500]
    policy = request.POST.get("after_resolved", look.after_resolved)
    look.after_resolved = policy if policy in ResolvedPolicy.values else look.after_resolved
    look.hours_enabled = request.POST.get("hours_enabled") == "on"
    hours: dict[str, list[list[str]]] = {}
    for i, day in enumerate(DAYS):
        try:
            ranges = hours_parse_day(request.POST.get(f"hours_{i}", ""))
        except ValueError as exc:
            raise ValidationError({"business_hours": f"{day}: {exc}."}) from exc
        if ranges:
            hours[str(i)] = ranges
    look.business_hours = hours
    look.auto_assign = request.POST.get("auto_assign") == "on"
    cap = request.POST.get("agent_cap", str(look.agent_cap)).strip()
    if not cap.isdigit():
        raise ValidationError({"agent_cap": "The cap of open conversations per agent is a number from 1 to 50."})
    look.agent_cap = int(cap)
    look.full_clean(exclude=["tenant"])
    look.save()
    services.widget_key_update(
        widget_key=key,
        allowed_origins=request.POST.get("allowed_origins", "").split(),
        identity_required=request.POST.get("identity_required") == "on",
    )


def demo_store(request: HttpRequest) -> HttpResponse:
    """A demo shop page of the demo tenant that embeds the widget with one script tag."""
    tenant = Tenant.objects.filter(slug=settings.DEMO_TENANT_SLUG).first()
    if tenant is None:
        raise Http404("The demo business does not exist yet; run `make run` (manage.py setup_demo).")
    origin = f"{request.scheme}://{request.get_host()}"
    with tenant_context(tenant):
        key: WidgetKey = services.tenant_widget_ready()
        wanted = services.origin_normalize(origin)
        if wanted not in key.allowed_origins:  # the app's own origin serves its demo page
            services.widget_key_update(
                widget_key=key, allowed_origins=[*key.allowed_origins, wanted], identity_required=key.identity_required
            )
    return render(request, "chatbot/demo_store.html", {"tenant": tenant, "widget_key": key.key})
