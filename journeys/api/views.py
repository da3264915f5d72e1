"""Journeys API: customers, products, orders (upsert by their external key), events (batch ingestion,
cursor pagination), feedback, CSV imports. Scoping and permissions come from TenantScopedViewSet."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, pagination, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from journeys import services
from journeys.api.filters import CustomerFilter, EventFilter, FeedbackFilter, OrderFilter, ProductFilter
from journeys.api.json import OrjsonParser, OrjsonRenderer
from journeys.api.serializers import (
    CustomerSerializer,
    EventBatchResultSerializer,
    EventBatchSerializer,
    EventSerializer,
    FeedbackSerializer,
    IdentifySerializer,
    ImportCreateSerializer,
    OrderSerializer,
    ProductSerializer,
)
from journeys.imports import IMPORT_KIND, import_start
from journeys.models import ConsentSource, Customer, Event, Feedback, Order, OrderLine, Product
from tenants.api.base import TenantScopedViewSet
from tenants.api.serializers import JobSerializer
from tenants.models import Job, User

KEY_REGEX = r"[^/]+"


def _with_key(request: Request, key_field: str, key: str) -> dict[str, Any]:
    data = dict(request.data.items()) if hasattr(request.data, "items") else {}
    if key_field in data and str(data[key_field]) != key:
        raise serializers.ValidationError({key_field: [f"Does not match the {key_field} in the URL ({key})."]})
    data[key_field] = key
    return data


class _UpsertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """POST creates (400 when the key exists), PUT /<key>/ creates or replaces, PATCH updates given fields."""

    key_field: str

    def _save(self, data: dict[str, Any], *, replace: bool) -> tuple[Any, bool]:
        raise NotImplementedError

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = serializer.validated_data[self.key_field]
        if self.get_queryset().filter(**{self.key_field: key}).exists():
            raise serializers.ValidationError(
                {self.key_field: [f"{key!r} exists; PUT to {request.path}{key}/ to replace it, or PATCH to change it."]}
            )
        obj, _ = self._save(serializer.validated_data, replace=True)
        return Response(self.get_serializer(self._reload(obj)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = kwargs[self.lookup_field]
        partial = kwargs.pop("partial", False)
        if partial:
            self.get_object()  # PATCH needs an existing object: 404 otherwise
        serializer = self.get_serializer(data=_with_key(request, self.key_field, key), partial=partial)
        serializer.is_valid(raise_exception=True)
        obj, created = self._save(serializer.validated_data, replace=not partial)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(self._reload(obj)).data, status=code)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def _reload(self, obj: Any) -> Any:
        return self.get_queryset().get(pk=obj.pk)


class CustomerViewSet(_UpsertViewSet):
    """Customers, addressed by your external id. Consent changes are recorded with their time and source."""

    model = Customer
    serializer_class = CustomerSerializer
    lookup_field = key_field = "external_id"
    lookup_value_regex = KEY_REGEX
    filterset_class = CustomerFilter
    ordering_fields = ["created", "updated", "last_seen", "first_seen", "name", "email", "external_id"]
    ordering = ["-created", "-id"]

    def _save(self, data: dict[str, Any], *, replace: bool) -> tuple[Customer, bool]:
        return services.customer_upsert(
            external_id=data["external_id"],
            data={k: data[k] for k in services.CUSTOMER_FIELDS if k in data},
            consent_personalization=data.get("consent_personalization"),
            consent_marketing=data.get("consent_marketing"),
            consent_source=data.get("consent_source", ConsentSource.API),
            replace=replace,
        )

    def perform_destroy(self, instance: Customer) -> None:
        services.customer_delete(customer=instance)


class ProductViewSet(_UpsertViewSet):
    """Products, addressed by SKU."""

    model = Product
    serializer_class = ProductSerializer
    lookup_field = key_field = "sku"
    lookup_value_regex = KEY_REGEX
    filterset_class = ProductFilter
    ordering_fields = ["name", "price", "sku", "category", "created", "updated"]
    ordering = ["name", "id"]

    def _save(self, data: dict[str, Any], *, replace: bool) -> tuple[Product, bool]:
        return services.product_upsert(
            sku=data["sku"], data={k: data[k] for k in services.PRODUCT_FIELDS if k in data}, replace=replace
        )


class OrderViewSet(_UpsertViewSet):
    """Orders with their lines, addressed by your external id. PUT replaces the order and all its lines.
    Cancelled and refunded orders stay recorded; `counts_as_revenue` is false for them."""

    model = Order
    serializer_class = OrderSerializer
    lookup_field = key_field = "external_id"
    lookup_value_regex = KEY_REGEX
    filterset_class = OrderFilter
    ordering_fields = ["placed_at", "total", "created", "updated"]
    ordering = ["-placed_at", "-id"]

    def scoped_queryset(self) -> QuerySet[Any]:
        lines = OrderLine.objects.select_related("product").order_by("id")
        return Order.objects.select_related("customer").prefetch_related(Prefetch("lines", queryset=lines))

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if kwargs.get("partial"):
            raise serializers.ValidationError(
                {"non_field_errors": ["PATCH is not supported for orders; PUT it whole."]}
            )
        return super().update(request, *args, **kwargs)

    def _save(self, data: dict[str, Any], *, replace: bool) -> tuple[Order, bool]:
        lines = [
            services.LineIn(sku=line["product"]["sku"], quantity=line["quantity"], unit_price=line.get("unit_price"))
            for line in data["lines"]
        ]
        return services.order_upsert(
            external_id=data["external_id"],
            customer=data["customer"],
            placed_at=data["placed_at"],
            status=data.get("status", "placed"),
            currency=data.get("currency"),
            channel=data.get("channel", ""),
            total=data.get("total"),
            lines=lines,
        )

    def perform_destroy(self, instance: Order) -> None:
        services.order_delete(order=instance)


class EventCursorPagination(pagination.CursorPagination):
    ordering = ("-occurred_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Events (touchpoints), newest first, with cursor pagination. POST sends a batch of up to 1,000."""

    model = Event
    serializer_class = EventSerializer
    pagination_class = EventCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter
    parser_classes = [OrjsonParser]
    renderer_classes = [OrjsonRenderer]

    def scoped_queryset(self) -> QuerySet[Any]:
        return Event.objects.select_related("customer")

    @extend_schema(request=EventBatchSerializer, responses={200: EventBatchResultSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Each item is stored, a `duplicate` of an item already stored (same idempotency_key; without a key,
        same content), or `rejected` with its errors. The answer lists every item in order."""
        items = request.data.get("events") if isinstance(request.data, dict) else request.data
        if not isinstance(items, list):
            raise serializers.ValidationError({"events": ['Send a JSON list of events, or {"events": [...]}.']})
        result = services.events_ingest(items=items)
        return Response(
            {
                "received": len(items),
                "stored": result.stored,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "results": result.results,
            }
        )

    @extend_schema(request=IdentifySerializer, responses={200: OpenApiResponse(description="{linked_events: n}")})
    @action(detail=False, methods=["post"])
    def identify(self, request: Request) -> Response:
        """The anonymous visitor is this customer: their anonymous events are linked, now and later."""
        serializer = IdentifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        linked = services.visitor_identify(
            anonymous_id=serializer.validated_data["anonymous_id"], customer=serializer.validated_data["customer"]
        )
        return Response({"linked_events": linked})


class FeedbackViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
    TenantScopedViewSet,
):  # fmt: skip
    """Survey answers. Scales: CSAT 1–5, NPS 0–10, CES 1–7; a score outside its scale is rejected."""

    model = Feedback
    serializer_class = FeedbackSerializer
    filterset_class = FeedbackFilter
    ordering_fields = ["created", "score"]
    ordering = ["-created", "-id"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return Feedback.objects.select_related("customer", "order")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.feedback_create(**serializer.validated_data)


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """CSV imports run as background jobs; poll one to follow its progress and read its report.

    Rule: every valid row is stored and every bad row reported (line, column, reason); for orders a bad
    line rejects its whole order, wherever its lines are in the file (see journeys.imports). Missing columns
    or a file that is not UTF-8 fail the job, storing nothing."""

    model = Job
    serializer_class = JobSerializer
    write_permission = "data.write"
    parser_classes = [MultiPartParser, FormParser]
    ordering = ["-created"]
    filterset_fields = ["status"]

    def scoped_queryset(self) -> QuerySet[Any]:
        return Job.objects.filter(kind=IMPORT_KIND).select_related("created_by")

    @extend_schema(request=ImportCreateSerializer, responses={202: JobSerializer})
    def create(self, request: Request) -> Response:
        """Upload a CSV (multipart: `kind` = customers | products | orders, `file`); returns the job."""
        serializer = ImportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if isinstance(request.user, User) else None
        job = import_start(kind=serializer.validated_data["kind"], upload=serializer.validated_data["file"], user=user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
