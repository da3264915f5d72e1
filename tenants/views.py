"""Dashboard pages of the tenants app: home, settings (business, team, API keys, jobs, audit log)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenants import services
from tenants.context import current_tenant
from tenants.forms import (
    ApiKeyForm,
    InvitationForm,
    InvitationSignupForm,
    NewBusinessForm,
    RoleForm,
    TenantSettingsForm,
)
from tenants.jobs import job_start
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import ApiKey, AuditLogEntry, Invitation, Job, JobStatus, Membership, User
from tenants.permissions import role_has
from tenants.tasks import AUDIT_EXPORT

View = Callable[..., HttpResponseBase]


def member_required(permission: str) -> Callable[[View], View]:
    """Signed in, a member of the current tenant, and a role that grants `permission` (else 403)."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            membership = getattr(request, "membership", None)
            if membership is None:
                return redirect("business_new")
            if not role_has(membership.role, permission):
                raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot open this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _service_errors(request: HttpRequest, exc: ValidationError | PermissionDenied) -> None:
    if isinstance(exc, ValidationError):
        for msg in exc.messages:
            messages.error(request, msg)
    else:
        messages.error(request, str(exc) or "You are not allowed to do that.")


@member_required("dashboard.view")
def home(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - timedelta(days=13)
    per_day = dict(
        Job.objects.filter(created__gte=since.replace(hour=0, minute=0, second=0))
        .annotate(day=TruncDate("created"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    days = [(since + timedelta(days=i)).date() for i in range(14)]
    context = {
        "member_count": Membership.objects.count(),
        "active_keys": ApiKey.objects.filter(revoked_at=None).count(),
        "pending_invitations": sum(
            1 for i in Invitation.objects.filter(accepted_at=None, revoked_at=None) if i.is_pending
        ),
        "recent_jobs": Job.objects.select_related("created_by").order_by("-created")[:5],
        "recent_audit": AuditLogEntry.objects.select_related("actor")[:6],
        "chart_data": {"labels": [d.strftime("%b %d") for d in days], "values": [per_day.get(d, 0) for d in days]},
    }
    return render(request, "tenants/home.html", context)


@login_required
def business_new(request: HttpRequest) -> HttpResponse:
    """Create another business (or a first one for a user who has none)."""
    form = NewBusinessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        tenant = services.tenant_create(
            name=form.cleaned_data["business_name"],
            owner=request.user,  # type: ignore[arg-type]
            timezone_name=form.cleaned_data["timezone"],
            currency=form.cleaned_data["currency"],
        )
        request.session[SESSION_TENANT_KEY] = tenant.pk
        messages.success(request, f"{tenant.name} is ready.")
        return redirect("home")
    return render(request, "tenants/business_new.html", {"form": form})


@login_required
@require_POST
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """Switch the session to another business the user is a member of (404 otherwise)."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError as exc:
        raise Http404 from exc
    membership = next((m for m in getattr(request, "memberships", []) if m.tenant_id == tenant_id), None)
    if membership is None:
        raise Http404("No such business.")
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    return redirect("home")


@member_required("settings.manage")
def settings_general(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant()
    form = TenantSettingsForm(request.POST or None, instance=tenant)
    if request.method == "POST" and form.is_valid():
        services.tenant_update(
            tenant=tenant,
            actor=request.user,  # type: ignore[arg-type]
            name=form.cleaned_data["name"],
            timezone_name=form.cleaned_data["timezone"],
            currency=form.cleaned_data["currency"],
        )
        messages.success(request, "Business settings saved.")
        return redirect("settings_general")
    return render(request, "tenants/settings_general.html", {"form": form})


@member_required("team.manage")
def settings_team(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_create(
                actor_membership=request.membership,  # type: ignore[attr-defined]
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except (ValidationError, PermissionDenied) as exc:
            _service_errors(request, exc)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("settings_team")
    invitations = [i for i in Invitation.objects.select_related("invited_by").order_by("-created") if i.is_pending]
    members = Membership.objects.select_related("user").order_by("created")
    return render(
        request,
        "tenants/settings_team.html",
        {"form": form, "members": members, "invitations": invitations, "role_form": RoleForm()},
    )


@member_required("team.manage")
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(
                actor_membership=request.membership,  # type: ignore[attr-defined]
                membership=membership,
                role=form.cleaned_data["role"],
            )
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
        except (ValidationError, PermissionDenied) as exc:
            _service_errors(request, exc)
    return redirect("settings_team")


@member_required("team.manage")
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk)
    try:
        services.membership_remove(actor_membership=request.membership, membership=membership)  # type: ignore[attr-defined]
        messages.success(request, f"{membership.user.email} was removed from the team.")
    except (ValidationError, PermissionDenied) as exc:
        _service_errors(request, exc)
    return redirect("settings_team")


@member_required("team.manage")
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk)
    services.invitation_revoke(invitation=invitation, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("settings_team")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link in an invitation email: join (signed in), sign in first, or create an account."""
    invitation = services.invitation_lookup(token=token)
    if invitation is None:
        return render(request, "tenants/invitation_invalid.html", status=404)
    account_exists = User.objects.filter(email__iexact=invitation.email).exists()
    signup_form = None
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                membership = services.invitation_accept(invitation=invitation, user=request.user)  # type: ignore[arg-type]
            except (ValidationError, PermissionDenied) as exc:
                _service_errors(request, exc)
            else:
                request.session[SESSION_TENANT_KEY] = membership.tenant_id
                messages.success(request, f"Welcome to {invitation.tenant.name}.")
                return redirect("home")
    elif not account_exists:
        signup_form = InvitationSignupForm(request.POST or None, email=invitation.email)
        if request.method == "POST" and signup_form.is_valid():
            with transaction.atomic():
                user = User.objects.create_user(
                    invitation.email, signup_form.cleaned_data["password1"], name=signup_form.cleaned_data["name"]
                )
                # The invitation link reached this address, which verifies it.
                EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
                membership = services.invitation_accept(invitation=invitation, user=user)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_TENANT_KEY] = membership.tenant_id
            messages.success(request, f"Welcome to {invitation.tenant.name}.")
            return redirect("home")
    return render(
        request,
        "tenants/invitation_accept.html",
        {"invitation": invitation, "account_exists": account_exists, "signup_form": signup_form},
    )


NEW_KEY_SESSION = "cx_new_api_key"


@member_required("apikeys.manage")
def settings_api_keys(request: HttpRequest) -> HttpResponse:
    """Create and list keys. A new key's secret is shown once, on the page after the redirect."""
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.api_key_create(
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                created_by=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            _service_errors(request, exc)
        else:
            # Post/redirect/get, so a reload cannot create a second key; the secret rides in the
            # session for exactly one page view.
            request.session[NEW_KEY_SESSION] = {"name": issued.api_key.name, "secret": issued.secret}
            return redirect("settings_api_keys")
    issued = request.session.pop(NEW_KEY_SESSION, None)
    keys = ApiKey.objects.select_related("created_by").order_by("revoked_at", "-created")
    return render(request, "tenants/settings_api_keys.html", {"form": form, "keys": keys, "issued": issued})


@member_required("apikeys.manage")
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    services.api_key_revoke(api_key=key, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"The key “{key.name}” was revoked. Requests using it are now refused.")
    return redirect("settings_api_keys")


# The jobs page polls every second while a job is queued or running, and slowly otherwise, so a
# job started elsewhere (the API, another tab, a schedule) still shows up without a reload.
JOBS_POLL_ACTIVE_SECONDS = 1
JOBS_POLL_IDLE_SECONDS = 5


def _jobs_context() -> dict[str, Any]:
    jobs = list(Job.objects.select_related("created_by").order_by("-created")[:50])
    active = any(j.status in (JobStatus.QUEUED, JobStatus.RUNNING) for j in jobs)
    return {"jobs": jobs, "poll_seconds": JOBS_POLL_ACTIVE_SECONDS if active else JOBS_POLL_IDLE_SECONDS}


@member_required("dashboard.view")
def settings_jobs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not role_has(request.membership.role, "jobs.run"):  # type: ignore[attr-defined]
            raise PermissionDenied("Your role cannot start jobs.")
        job_start(kind=AUDIT_EXPORT, created_by=request.user)  # type: ignore[arg-type]
        messages.success(request, "Audit log export started. It appears below; you can keep working.")
        return redirect("settings_jobs")
    template = "tenants/_jobs_table.html" if request.headers.get("HX-Request") else "tenants/settings_jobs.html"
    return render(request, template, _jobs_context())


@member_required("dashboard.view")
def job_download(request: HttpRequest, pk: int) -> FileResponse:
    job = get_object_or_404(Job, pk=pk, status=JobStatus.SUCCEEDED)
    path = (job.result or {}).get("file")
    if not path or not default_storage.exists(path):
        raise Http404("This job has no file.")
    return FileResponse(default_storage.open(path, "rb"), as_attachment=True, filename=path.rsplit("/", 1)[-1])


@member_required("audit.view")
def settings_audit(request: HttpRequest) -> HttpResponse:
    entries = AuditLogEntry.objects.select_related("actor", "api_key")[:200]
    return render(request, "tenants/settings_audit.html", {"entries": entries})
