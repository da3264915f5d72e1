"""Dashboard pages: customers (list, profile with timeline), products, import and export."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from journeys import selectors, services
from journeys.exports import EXPORT_KIND, export_start
from journeys.forms import ConsentForm, ExportForm, ImportForm
from journeys.imports import IMPORT_KIND, import_start
from journeys.models import REVENUE_STATUSES, ConsentSource, Customer, Order, Product, VisitorIdentity
from journeys.panels import customer_panels
from tenants.models import Job, JobStatus
from tenants.permissions import role_has
from tenants.views import member_required

PAGE_SIZE = 50
CUSTOMER_SORTS = [("-last_seen", "Last seen"), ("name", "Name"), ("-created", "Newest"), ("email", "Email")]
SEEN_CHOICES = [("7d", "In the last 7 days"), ("30d", "In the last 30 days"), ("90d", "In the last 90 days"),
                ("lapsed", "Not in the last 90 days"), ("never", "Never")]  # fmt: skip
PRODUCT_SORTS = [
    ("name", "Name"),
    ("category", "Category"),
    ("price", "Price, low first"),
    ("-price", "Price, high first"),
]


def _require(request: HttpRequest, permission: str) -> None:
    if not role_has(request.membership.role, permission):  # type: ignore[attr-defined]
        raise PermissionDenied("Your role does not allow this.")


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@member_required("dashboard.view")
def customer_list(request: HttpRequest) -> HttpResponse:
    filters = {name: request.GET.get(name, "") for name in ("q", "consent", "seen", "orders")}
    sort = request.GET.get("sort", "-last_seen")
    qs = selectors.customer_list(
        q=filters["q"], consent=filters["consent"], seen=filters["seen"], orders=filters["orders"], ordering=sort
    )
    page = Paginator(qs, PAGE_SIZE).get_page(_page_number(request))
    customers = list(page.object_list)
    stats = {
        row["customer_id"]: row
        for row in Order.objects.filter(customer__in=[c.pk for c in customers])
        .values("customer_id")
        .annotate(n=Count("id"), revenue=Sum("total", filter=Q(status__in=REVENUE_STATUSES)))
    }
    rows = [(c, stats.get(c.pk, {}).get("n", 0), stats.get(c.pk, {}).get("revenue")) for c in customers]
    filtered = any(filters.values())
    context = {
        "page": page, "rows": rows, **filters, "sort": sort, "sorts": CUSTOMER_SORTS, "filtered": filtered,
        "seen_choices": SEEN_CHOICES, "query": urlencode({**filters, "sort": sort}),
        "total": Customer.objects.count() if filtered else page.paginator.count,
    }  # fmt: skip
    return render(request, "journeys/customer_list.html", context)


@member_required("dashboard.view")
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    if request.method == "POST":
        _require(request, "data.write")
        form = ConsentForm(request.POST)
        if form.is_valid():
            services.customer_set_consent(
                customer=customer,
                personalization=form.cleaned_data["consent_personalization"],
                marketing=form.cleaned_data["consent_marketing"],
                source=ConsentSource.DASHBOARD,
            )
            messages.success(request, "Consent saved.")
        return redirect("customer_detail", pk=customer.pk)
    form = ConsentForm(
        initial={
            "consent_personalization": customer.consent_personalization,
            "consent_marketing": customer.consent_marketing,
        }
    )
    context = {
        "customer": customer,
        "summary": selectors.customer_summary(customer=customer),
        "orders": selectors.customer_orders(customer=customer),
        "timeline": selectors.customer_timeline(customer=customer),
        "visitor_ids": VisitorIdentity.objects.filter(customer=customer).values_list("anonymous_id", flat=True)[:10],
        "consent_form": form,
        "attributes": sorted((customer.attributes or {}).items()),
        "panels": customer_panels(request, customer),
    }
    return render(request, "journeys/customer_detail.html", context)


@member_required("dashboard.view")
def product_list(request: HttpRequest) -> HttpResponse:
    q, category, sort = request.GET.get("q", ""), request.GET.get("category", ""), request.GET.get("sort", "name")
    qs = selectors.product_search(Product.objects.all(), q)
    if category:
        qs = qs.filter(category=category)
    sort = sort if sort in dict(PRODUCT_SORTS) else "name"
    page = Paginator(qs.order_by(sort, "id"), PAGE_SIZE).get_page(_page_number(request))
    categories = Product.objects.exclude(category="").values_list("category", flat=True).distinct().order_by("category")
    context = {"page": page, "q": q, "category": category, "categories": list(categories), "sort": sort,
               "sorts": PRODUCT_SORTS, "query": urlencode({"q": q, "category": category, "sort": sort})}  # fmt: skip
    return render(request, "journeys/product_list.html", context)


def _jobs_context() -> dict[str, Any]:
    imports = list(Job.objects.filter(kind=IMPORT_KIND).select_related("created_by").order_by("-created")[:20])
    exports = list(Job.objects.filter(kind=EXPORT_KIND).select_related("created_by").order_by("-created")[:10])
    active = any(j.status in (JobStatus.QUEUED, JobStatus.RUNNING) for j in imports + exports)
    return {"imports": imports, "exports": exports, "any_active": active}


@member_required("dashboard.view")
def imports_page(request: HttpRequest) -> HttpResponse:
    form = ImportForm()
    if request.method == "POST":
        _require(request, "data.write")
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            job = import_start(
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                user=request.user,  # type: ignore[arg-type]
            )
            messages.success(request, "Import started. Follow it below; you can keep working.")
            return redirect("import_detail", pk=job.pk)
    if request.headers.get("HX-Request"):
        return render(request, "journeys/_import_jobs.html", _jobs_context())
    return render(request, "journeys/imports.html", {"form": form, "export_form": ExportForm(), **_jobs_context()})


@member_required("dashboard.view")
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.filter(kind=IMPORT_KIND).select_related("created_by"), pk=pk)
    template = "journeys/_import_status.html" if request.headers.get("HX-Request") else "journeys/import_detail.html"
    return render(request, template, {"job": job, "result": job.result or {}})


@member_required("dashboard.view")
@require_POST
def export_start_view(request: HttpRequest) -> HttpResponse:
    _require(request, "jobs.run")
    form = ExportForm(request.POST)
    if form.is_valid():
        export_start(table=form.cleaned_data["table"], user=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Export of {form.cleaned_data['table']} started; it appears below.")
    else:
        messages.error(request, "Choose a table to export.")
    return redirect("imports")
