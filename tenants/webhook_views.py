"""Settings → Webhooks: endpoints (secret shown once), event subscriptions, recent deliveries, send test."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenants import webhooks
from tenants.models import WebhookEndpoint
from tenants.views import member_required

NEW_SECRET_SESSION = "cx_new_webhook_secret"


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https")
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {label}") for name, label in webhooks.EVENTS.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event, including ones added later.",
    )


def _issued(request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> None:
    request.session[NEW_SECRET_SESSION] = {"url": endpoint.url, "secret": secret}


@member_required("settings.manage")
def settings_webhooks(request: HttpRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = webhooks.webhook_endpoint_create(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                created_by=request.user,  # type: ignore[arg-type]
            )
        except webhooks.WebhookError as exc:
            form.add_error(None, str(exc))
        else:
            _issued(request, endpoint, secret)  # shown once, after the redirect
            return redirect("settings_webhooks")
    return render(
        request,
        "tenants/settings_webhooks.html",
        {
            "form": form,
            "issued": request.session.pop(NEW_SECRET_SESSION, None),
            "endpoints": WebhookEndpoint.objects.order_by("-created"),
            "deliveries": webhooks.webhook_deliveries_recent(limit=50),
            "events": webhooks.EVENTS,
        },
    )


@member_required("settings.manage")
def settings_webhook_deliveries(request: HttpRequest) -> HttpResponse:
    """The recent-deliveries table alone (htmx refreshes it)."""
    return render(
        request, "tenants/_webhook_deliveries.html", {"deliveries": webhooks.webhook_deliveries_recent(limit=50)}
    )


@member_required("settings.manage")
@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks.webhook_send_test(endpoint=endpoint)
    messages.success(request, f"A test event is on its way to {endpoint.url}; its delivery appears below.")
    return redirect("settings_webhooks")


@member_required("settings.manage")
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks.webhook_endpoint_update(endpoint=endpoint, active=not endpoint.active)
    messages.success(request, f"{endpoint.url} is now {'enabled' if endpoint.active else 'disabled'}.")
    return redirect("settings_webhooks")


@member_required("settings.manage")
@require_POST
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    _issued(request, endpoint, webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint))
    return redirect("settings_webhooks")


@member_required("settings.manage")
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks.webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.url} deleted with its delivery log.")
    return redirect("settings_webhooks")
