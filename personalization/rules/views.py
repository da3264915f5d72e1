"""Dashboard pages of rule segments: list, builder (new and edit) with a live count, members with CSV export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from personalization.models import RuleSegment, SegmentKind, SegmentMember
from personalization.rules import selectors, services
from personalization.rules.forms import RuleSegmentForm
from personalization.rules.language import DefinitionError
from tenants.context import current_tenant, tenant_context
from tenants.models import User
from tenants.permissions import role_has
from tenants.views import member_required

PAGE_SIZE = 50
EXAMPLE = {
    "all": [
        {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1},
        {"field": "orders_in_window", "days": 7, "op": "none"},
    ]
}


def _members(n: int) -> str:
    return f"{n:,} member{'' if n == 1 else 's'}"


def _require(request: HttpRequest, permission: str) -> None:
    if not role_has(request.membership.role, permission):  # type: ignore[attr-defined]
        raise PermissionDenied("Your role does not allow changing segments.")


@member_required("dashboard.view")
def rule_segment_list(request: HttpRequest) -> HttpResponse:
    segments = list(selectors.rule_segment_list())
    words = selectors.segment_descriptions(segments=segments)
    rows = [(s, words[s.pk]) for s in segments]
    return render(request, "personalization/rules/list.html", {"rows": rows})


def _builder(request: HttpRequest, segment: RuleSegment | None) -> HttpResponse:
    problems: list[dict[str, str]] = []
    if request.method == "POST":
        _require(request, "data.write")
        form = RuleSegmentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if segment is None:
                    user = request.user if isinstance(request.user, User) else None
                    segment = services.rule_segment_create(
                        name=data["name"], description=data["description"], definition=data["definition"],
                        kind=data["kind"], created_by=user,
                    )  # fmt: skip
                    messages.success(request, f'"{segment.name}" saved with {_members(segment.member_count)}.')
                else:
                    segment = services.rule_segment_update(
                        segment=segment, name=data["name"], description=data["description"],
                        definition=data["definition"], kind=data["kind"],
                    )  # fmt: skip
                    messages.success(request, f'"{segment.name}" updated: {_members(segment.member_count)}.')
                return redirect("rule_segment_detail", pk=segment.pk)
            except DefinitionError as exc:
                problems = exc.as_list()
                form.add_error("definition", "Some conditions need fixing; each is marked in the builder.")
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        definition_text = request.POST.get("definition", "")
    else:
        initial = (
            {"name": segment.name, "description": segment.description, "kind": segment.kind}
            if segment is not None
            else {"kind": SegmentKind.DYNAMIC}
        )
        definition_text = json.dumps(segment.definition if segment is not None else {"all": []})
        form = RuleSegmentForm(initial={**initial, "definition": definition_text})
    try:
        initial_definition = json.loads(definition_text) if definition_text else {"all": []}
    except ValueError:
        initial_definition = {"all": []}
    context = {
        "form": form,
        "segment": segment,
        "catalog": selectors.builder_catalog(),
        "initial_definition": initial_definition,
        "problems": problems,
        "example_json": json.dumps(EXAMPLE),
        "total_customers": selectors.definition_count(definition={"all": []}),
    }
    return render(request, "personalization/rules/builder.html", context)


@member_required("data.write")
def rule_segment_new(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@member_required("data.write")
def rule_segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _builder(request, get_object_or_404(RuleSegment, pk=pk))


@member_required("dashboard.view")
@require_POST
def rule_segment_count(request: HttpRequest) -> JsonResponse:
    """The builder's live count: {"count": n}, or 400 {"error": ..., "problems": [{path, message}]}."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "Send the definition as JSON.", "problems": []}, status=400)
    segment = None
    if isinstance(body, dict) and body.get("segment"):
        segment = get_object_or_404(RuleSegment, pk=body["segment"])
    try:
        count = selectors.definition_count(definition=body.get("definition") if isinstance(body, dict) else None,
                                           segment=segment)  # fmt: skip
    except DefinitionError as exc:
        return JsonResponse({"error": str(exc), "problems": exc.as_list()}, status=400)
    return JsonResponse({"count": count})


@member_required("dashboard.view")
def rule_segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(RuleSegment.objects.select_related("created_by"), pk=pk)
    page = Paginator(selectors.segment_members(segment=segment), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "segment": segment,
        "page": page,
        "used_by": selectors.segments_referring_to(segment=segment),
        "definition_json": json.dumps(segment.definition, indent=2),
        "definition_words": selectors.segment_descriptions(segments=[segment])[segment.pk],
        "catalog": selectors.builder_catalog(),
    }
    return render(request, "personalization/rules/detail.html", context)


@member_required("data.write")
@require_POST
def rule_segment_refresh_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(RuleSegment, pk=pk)
    try:
        result = services.rule_segment_refresh(segment=segment)
    except DefinitionError as exc:
        messages.error(request, f"Could not refresh: {exc}")
    else:
        messages.success(
            request, f"Refreshed: {result.added:,} joined, {result.removed:,} left, {_members(result.members)} now."
        )
    return redirect("rule_segment_detail", pk=segment.pk)


@member_required("data.write")
@require_POST
def rule_segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(RuleSegment, pk=pk)
    try:
        services.rule_segment_delete(segment=segment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("rule_segment_detail", pk=segment.pk)
    messages.success(request, f'"{segment.name}" deleted.')
    return redirect("rule_segment_list")


def _cell(value: str) -> str:
    # A spreadsheet must not run a name or email as a formula (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(tenant_pk: int, segment_pk: int) -> Iterator[str]:
    # A streamed body is read after the view returns: it sets its tenant again for its own queries.
    from tenants.models import Tenant

    writer = csv.writer(_Echo())
    with tenant_context(Tenant.objects.get(pk=tenant_pk)):
        yield writer.writerow(["external_id", "email", "name", "phone", "consent_marketing", "added_at"])
        rows = (
            SegmentMember.objects.filter(segment_id=segment_pk)
            .order_by("customer__external_id")
            .values_list("customer__external_id", "customer__email", "customer__name", "customer__phone",
                         "customer__consent_marketing", "added_at")
        )  # fmt: skip
        for ext, email, name, phone, consent, added in rows.iterator(chunk_size=2000):
            cells = [_cell(ext), _cell(email), _cell(name), _cell(phone), "yes" if consent else "no"]
            yield writer.writerow([*cells, added.isoformat()])


@member_required("dashboard.view")
def rule_segment_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    segment = get_object_or_404(RuleSegment, pk=pk)
    filename = f"segment-{slugify(segment.name) or segment.pk}-{timezone.now():%Y%m%d}.csv"
    response = StreamingHttpResponse(_csv_rows(current_tenant().pk, segment.pk), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
