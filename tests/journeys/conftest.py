"""Factories and helpers for journeys tests. Build data inside a tenant context (`in_tenant` or tenant_context)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import factory
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from journeys.models import Customer, Event, Feedback, Order, OrderLine, Product
from tenants.context import tenant_context
from tenants.models import Job, Tenant


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Sequence(lambda n: f"Customer {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "Coffee"
    price = Decimal("12.50")
    currency = "USD"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"ord-{n}")
    customer = factory.SubFactory(CustomerFactory)
    placed_at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    status = "paid"
    total = Decimal("25.00")
    currency = "USD"


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 2
    unit_price = Decimal("12.50")

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("tenant_id", kwargs["order"].tenant_id)
        return super()._create(model_class, *args, **kwargs)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = "page_view"
    url = "https://shop.example.com/"
    occurred_at = datetime(2025, 3, 1, 11, tzinfo=UTC)
    idempotency_key = factory.Sequence(lambda n: f"evt-{n}")


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    kind = "csat"
    score = 5
    customer = factory.SubFactory(CustomerFactory)


@pytest.fixture
def tenant_data(tenant: Tenant) -> dict[str, Any]:
    """Tenant A: one customer with an order (one line), an event and a feedback answer."""
    with tenant_context(tenant):
        customer = CustomerFactory(external_id="a-1", email="ann@example.com", name="Ann A")
        product = ProductFactory(sku="BEAN-1", name="House Blend")
        order = OrderFactory(external_id="A-100", customer=customer)
        OrderLineFactory(order=order, product=product)
        event = EventFactory(customer=customer)
        feedback = FeedbackFactory(customer=customer, order=order)
    return {"customer": customer, "product": product, "order": order, "event": event, "feedback": feedback}


@pytest.fixture
def other_data(other_tenant: Tenant) -> dict[str, Any]:
    """Tenant B: the same shape, with different ids; its rows must never show up for tenant A."""
    with tenant_context(other_tenant):
        customer = CustomerFactory(external_id="b-1", email="bob@example.com", name="Bob B")
        product = ProductFactory(sku="B-SKU", name="Boutique Scarf")
        order = OrderFactory(external_id="B-100", customer=customer)
        OrderLineFactory(order=order, product=product)
        event = EventFactory(customer=customer, idempotency_key="b-evt")
        feedback = FeedbackFactory(customer=customer, order=order, score=1)
    return {"customer": customer, "product": product, "order": order, "event": event, "feedback": feedback}


def csv_upload(text: str, *, name: str = "data.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


@pytest.fixture
def run_import(tenant: Tenant) -> Callable[..., Job]:
    """Upload CSV text through the API as tenant A; jobs run inline, so the returned job is finished."""

    def run(client: APIClient, kind: str, text: str | bytes, **kwargs: Any) -> Job:
        data = text if isinstance(text, bytes) else text.encode(kwargs.pop("encoding", "utf-8"))
        upload = SimpleUploadedFile("upload.csv", data, content_type="text/csv")
        response = client.post("/api/v1/imports/", {"kind": kind, "file": upload}, format="multipart")
        assert response.status_code == 202, response.content
        with tenant_context(tenant):
            return Job.objects.get(pk=response.json()["id"])

    return run


__all__ = ["CustomerFactory", "ProductFactory", "csv_upload", "io"]


@pytest.fixture(autouse=True)
def _query_counts_with_the_key_cached(long_api_key_cache: None) -> None:
    """Query counts here are about the endpoints, not about the key cache's expiry."""


def api_queries(n: int) -> int:
    """Queries of an API request after a warm-up request, where `n` counts the API key look-up.

    The warm-up caches the key (so the look-up costs no query) and leaves the tenant written into the
    connection (so PostgreSQL needs no scope write): the same count on every database."""
    return n - 1
