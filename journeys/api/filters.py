"""Query-string filters of the journeys API (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from journeys.models import Customer, Event, Feedback, Order, Product
from journeys.selectors import customer_search, product_search


class CustomerFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")
    seen_since = django_filters.IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    q = django_filters.CharFilter(method="search", label="Search name, email, external id or phone")

    class Meta:
        model = Customer
        fields = ["external_id", "email", "consent_marketing", "consent_personalization"]

    def search(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return customer_search(queryset, value)


class ProductFilter(django_filters.FilterSet):
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    q = django_filters.CharFilter(method="search", label="Search name, sku or category")

    class Meta:
        model = Product
        fields = ["sku", "category", "active", "in_stock"]

    def search(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        return product_search(queryset, value)


class OrderFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id", label="Customer external id")
    placed_after = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")

    class Meta:
        model = Order
        fields = ["status", "currency", "channel"]


class EventFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id", label="Customer external id")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["type", "anonymous_id", "channel"]


class FeedbackFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id", label="Customer external id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt")

    class Meta:
        model = Feedback
        fields = ["kind", "channel"]


__all__: list[Any] = ["CustomerFilter", "EventFilter", "FeedbackFilter", "OrderFilter", "ProductFilter"]
