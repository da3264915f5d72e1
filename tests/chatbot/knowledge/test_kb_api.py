"""Knowledge-base API: CRUD through services (a change rebuilds the index), status, scopes, isolation, schema."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chatbot.models import FaqEntry, IndexStatus, KnowledgeIndexVersion
from tenants.context import tenant_context
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lexical(settings: object) -> None:
    settings.CX_BOT_EMBEDDINGS = False  # type: ignore[attr-defined]


def test_entry_crud_rebuilds_the_index(api_client: APIClient, tenant: Tenant) -> None:
    created = api_client.post(
        "/api/v1/knowledge/entries/",
        {"question": "Do you ship abroad?", "phrasings": ["international shipping"], "answer": "To the EU and UK."},
        format="json",
    )
    assert created.status_code == 201, created.json()
    entry = created.json()
    assert entry["index_id"] == f"faq:{entry['id']}" and entry["active"] is True
    status = api_client.get("/api/v1/knowledge/index/status/").json()
    assert status["up_to_date"] is True and status["active"]["entries"] == 1
    assert status["engine"]["mode"] == "lexical" and status["engine"]["variant"] is None
    assert status["engine"]["runtime"] is None
    patched = api_client.patch(f"/api/v1/knowledge/entries/{entry['id']}/", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False
    with tenant_context(tenant):
        assert KnowledgeIndexVersion.objects.get(status=IndexStatus.ACTIVE).entries_count == 0
    listing = api_client.get("/api/v1/knowledge/entries/?active=false").json()
    assert [e["id"] for e in listing["results"]] == [entry["id"]]
    assert api_client.get("/api/v1/knowledge/entries/?q=abroad").json()["count"] == 1
    assert api_client.delete(f"/api/v1/knowledge/entries/{entry['id']}/").status_code == 204
    rebuild = api_client.post("/api/v1/knowledge/index/rebuild/")
    assert rebuild.status_code == 202


def test_validation_errors_use_the_error_format(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/knowledge/entries/", {"question": "  ", "answer": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"]
    response = api_client.post("/api/v1/knowledge/entries/", {"question": "Q?", "answer": "   "}, format="json")
    assert response.status_code == 400 and "answer" in str(response.json()["error"]).lower()


def test_articles(api_client: APIClient) -> None:
    created = api_client.post(
        "/api/v1/knowledge/articles/", {"title": "Brewing", "body": "Use fresh beans."}, format="json"
    )
    assert created.status_code == 201
    assert api_client.get(f"/api/v1/knowledge/articles/{created.json()['id']}/").json()["title"] == "Brewing"


def test_read_key_cannot_write(read_api_client: APIClient) -> None:
    assert read_api_client.get("/api/v1/knowledge/entries/").status_code == 200
    response = read_api_client.post("/api/v1/knowledge/entries/", {"question": "Q", "answer": "A"}, format="json")
    assert response.status_code == 403
    assert read_api_client.post("/api/v1/knowledge/index/rebuild/").status_code == 403


def test_other_tenant_gets_404(api_client: APIClient, other_api_client: APIClient, tenant: Tenant) -> None:
    entry = api_client.post("/api/v1/knowledge/entries/", {"question": "Q?", "answer": "A."}, format="json").json()
    article = api_client.post("/api/v1/knowledge/articles/", {"title": "T", "body": "B"}, format="json").json()
    for path in (f"/api/v1/knowledge/entries/{entry['id']}/", f"/api/v1/knowledge/articles/{article['id']}/"):
        assert other_api_client.get(path).status_code == 404
        assert other_api_client.patch(path, {"active": False}, format="json").status_code == 404
        assert other_api_client.delete(path).status_code == 404
    assert other_api_client.get("/api/v1/knowledge/entries/").json()["count"] == 0
    assert other_api_client.get("/api/v1/knowledge/index/status/").json()["active"] is None
    with tenant_context(tenant):
        assert FaqEntry.objects.filter(active=True).count() == 1


def test_in_the_openapi_schema(api_client: APIClient) -> None:
    schema = api_client.get("/api/v1/schema/?format=json").json()
    for path in ("/api/v1/knowledge/entries/", "/api/v1/knowledge/entries/{id}/", "/api/v1/knowledge/articles/",
                 "/api/v1/knowledge/index/status/", "/api/v1/knowledge/index/rebuild/"):  # fmt: skip
        assert path in schema["paths"], path


def test_the_status_says_how_the_model_runs_on_this_cpu(
    api_client: APIClient, owner_client: Client, settings: Any
) -> None:
    from chatbot.engine import embeddings, get_embedder

    if get_embedder() is None:
        pytest.skip("embeddings extra not installed")
    settings.CX_BOT_EMBEDDINGS = True
    engine = api_client.get("/api/v1/knowledge/index/status/").json()["engine"]
    assert engine["mode"] == "semantic"
    assert engine["variant"] == ("int8" if embeddings._int_mm_is_fast() else "float")  # auto, the default
    page = owner_client.get("/knowledge/").content.decode()
    assert ("compact int8 form" if engine["variant"] == "int8" else "at full precision (float)") in page
    assert engine["label"] == "all-MiniLM-L6-v2, packaged with the product" and engine["label"] in page
    # auto: ONNX Runtime (installed with the embeddings extra) runs the float model; torch runs the int8 one
    assert engine["runtime"] == ("torch" if engine["variant"] == "int8" else "onnx")
    assert ("in ONNX Runtime" in page) is (engine["runtime"] == "onnx")
    settings.CX_BOT_MODEL_QUANTIZE = "false"
    settings.CX_BOT_MODEL_RUNTIME = "torch"
    engine = api_client.get("/api/v1/knowledge/index/status/").json()["engine"]
    assert (engine["variant"], engine["runtime"]) == ("float", "torch")
    assert "in ONNX Runtime" not in owner_client.get("/knowledge/").content.decode()
    settings.CX_BOT_MODEL_QUANTIZE = "true"
    settings.CX_BOT_MODEL_RUNTIME = "auto"
    engine = api_client.get("/api/v1/knowledge/index/status/").json()["engine"]
    assert (engine["variant"], engine["runtime"]) == ("int8", "torch")
