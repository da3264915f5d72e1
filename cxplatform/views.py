from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.api.errors import api_not_found


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON for the API, the product's page everywhere else."""
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return render(request, "404.html", status=404)
