"""Compile a parsed rule-segment definition into one QuerySet of the current tenant's customers.

Every leaf becomes a SQL condition on the customer row: a column, a JSON key of its attributes,
or a correlated subquery over its orders, order lines, events or scores (each of them scoped to
the current tenant by its default manager, and by row-level security on PostgreSQL). Groups
combine with AND / OR / NOT. A leaf that SQL could evaluate to NULL (a missing attribute, a
customer with no orders or no score) is folded to false first, so that NOT means "everyone
else" rather than silently dropping the unknowns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
)
from django.db.models.sql.compiler import SQLCompiler

from journeys.models import REVENUE_STATUSES, Customer, Event, Order, OrderLine
from personalization.models import CustomerScore, RuleSegment, SegmentKind, SegmentMember
from personalization.rules.language import (
    FIELDS_BY_KEY,
    Catalog,
    Condition,
    DefinitionError,
    Group,
    Node,
    Problem,
    parse,
    parse_date,
)

MAX_SEGMENT_NESTING = 5

PROFILE_COLUMNS = {
    "email", "name", "external_id", "phone", "created", "first_seen", "last_seen", "consent_marketing",
    "consent_personalization",
}  # fmt: skip
SCORE_COLUMNS = {
    "probability_alive", "churn_risk", "churn_band", "expected_orders_90d", "expected_orders_365d",
    "predicted_value_365d", "historic_value", "r_score", "f_score", "m_score", "rfm_segment", "cluster",
    "tenure_days", "avg_days_between_orders", "events_30d", "support_contacts", "avg_csat",
}  # fmt: skip


class JsonTypeOf(Func):
    """The JSON type of a key path inside a JSON column: 'number', 'string', 'boolean', 'object', 'array',
    'null', or NULL when the key is missing (the same words on PostgreSQL and SQLite)."""

    output_field = CharField()

    def __init__(self, column: str, parts: tuple[str, ...]) -> None:
        super().__init__(F(column))
        self.parts = parts

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, list[Any]]:
        lhs, params = compiler.compile(self.source_expressions[0])
        json_path = "$" + "".join(f'."{p}"' for p in self.parts)
        sql = (
            f"(CASE json_type({lhs}, %s) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"WHEN 'text' THEN 'string' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
            f"ELSE json_type({lhs}, %s) END)"
        )
        return sql, [*params, json_path, *params, json_path]

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        lhs, params = compiler.compile(self.source_expressions[0])
        return f"jsonb_typeof({lhs} #> %s::text[])", [*params, list(self.parts)]


@dataclass
class Context:
    """What compiling needs besides the tree: the clock, the tenant's time zone and its segments."""

    now: datetime
    tz: ZoneInfo
    catalog: Catalog
    segments: Mapping[int, RuleSegment] = field(default_factory=dict)
    stack: tuple[int, ...] = ()


def _start_of(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def _bounds(value: str, tz: ZoneInfo) -> tuple[datetime, datetime, bool]:
    """(start, end, is_day): a date covers its whole day in the tenant's zone; a date-time is one instant."""
    parsed = parse_date(value)
    if isinstance(parsed, datetime):
        instant = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
        return instant, instant, False
    assert parsed is not None  # validated by the parser
    return _start_of(parsed, tz), _start_of(parsed + timedelta(days=1), tz), True


def _truth(cond: Any) -> Q:
    """`cond` folded to plain true/false (NULL counts as false), as a filter."""
    when = When(cond if isinstance(cond, Q) else Q(cond), then=Value(True))
    return Q(Case(when, default=Value(False), output_field=BooleanField()))


def _compare(expr: Any, vtype: str, op: str, value: Any, ctx: Context) -> Q:
    """A positive comparison of `expr` (negative operators are compiled as NOT of their positive twin)."""
    if op == "is_set":
        cond = Q(IsNull(expr, False))
        return cond & ~Q(Exact(expr, "")) if vtype in ("text", "choice_text") else cond
    if vtype in ("text", "choice_text"):
        lookup = {"eq": IExact, "contains": IContains, "starts_with": IStartsWith, "ends_with": IEndsWith}[op]
        return Q(lookup(expr, value))
    if vtype == "date":
        if op == "in_last_days":
            return Q(GreaterThanOrEqual(expr, ctx.now - timedelta(days=value)))
        if op == "more_than_days_ago":
            return Q(LessThan(expr, ctx.now - timedelta(days=value)))
        if op == "before":
            start, _, _ = _bounds(value, ctx.tz)
            return Q(LessThan(expr, start))
        if op == "after":
            _, end, is_day = _bounds(value, ctx.tz)
            return Q(GreaterThanOrEqual(expr, end) if is_day else GreaterThan(expr, end))
        if op == "between":
            low, _, _ = _bounds(value[0], ctx.tz)
            _, high, is_day = _bounds(value[1], ctx.tz)
            return Q(GreaterThanOrEqual(expr, low)) & Q(LessThan(expr, high) if is_day else LessThanOrEqual(expr, high))
    if vtype in ("number", "integer", "decimal"):
        conv: Callable[[Any], Any] = (lambda v: Decimal(str(v))) if vtype == "decimal" else (lambda v: v)
        if op == "between":
            return Q(GreaterThanOrEqual(expr, conv(value[0]))) & Q(LessThanOrEqual(expr, conv(value[1])))
        number_lookup: dict[str, Any] = {
            "eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual,
        }  # fmt: skip
        return Q(number_lookup[op](expr, conv(value)))
    if vtype == "choice":
        return Q(In(expr, list(value)))
    raise AssertionError(f"no comparison {op} for {vtype}")


# field -> (aggregate over the customer's revenue orders, value type, whether no orders counts as 0)
ORDER_AGGREGATES: dict[str, tuple[Any, str, bool]] = {
    "orders_count": (Count("pk"), "integer", True),
    "revenue": (Sum("total"), "decimal", True),
    "aov": (Avg("total"), "decimal", False),
    "first_order_at": (Min("placed_at"), "date", False),
    "last_order_at": (Max("placed_at"), "date", False),
}

NEGATIONS = {
    "neq": "eq", "not_contains": "contains", "is_not_set": "is_set", "not_in": "in", "includes_none": "includes_any",
}  # fmt: skip


def _date_text_compare(expr: Any, op: str, value: Any, ctx: Context) -> Q:
    """Dates kept as ISO text in attributes compare as text, day by day in the tenant's zone."""

    def iso(d: date) -> str:
        return d.isoformat()

    today = ctx.now.astimezone(ctx.tz).date()
    if op == "in_last_days":
        return Q(GreaterThanOrEqual(expr, iso(today - timedelta(days=value))))
    if op == "more_than_days_ago":
        return Q(LessThan(expr, iso(today - timedelta(days=value))))
    first = str(value[0] if op == "between" else value)[:10]
    last = str(value[1] if op == "between" else value)[:10]
    after_last = iso(date.fromisoformat(last) + timedelta(days=1))
    if op == "before":
        return Q(LessThan(expr, first))
    if op == "after":
        return Q(GreaterThanOrEqual(expr, after_last))
    return Q(GreaterThanOrEqual(expr, first)) & Q(LessThan(expr, after_last))


def _revenue_orders() -> QuerySet[Order]:
    return Order.objects.filter(status__in=REVENUE_STATUSES).order_by()


def _customers_in(qs: QuerySet[Any], column: str = "customer_id") -> Q:
    """Customers whose id is among `qs`'s `column`: one semi-join, evaluated once for all customers (no
    per-customer subquery), which is what keeps a segment of 100,000 customers to one pass over the orders."""
    return Q(pk__in=qs.values(column))


def _count(qs: QuerySet[Any], op: str, n: int | None) -> Q:
    """Customers for whom `qs` has at least / at most / exactly n rows, or none."""
    qs = qs.filter(customer_id__isnull=False).order_by()
    if op == "none" or (op in ("at_most", "exactly") and n == 0):
        return ~_customers_in(qs)
    if op == "at_least" and n is not None and n <= 1:
        return _customers_in(qs) if n == 1 else Q(pk__isnull=False)
    grouped = qs.values("customer_id").annotate(_n=Count("pk"))
    if op == "at_least":
        return _customers_in(grouped.filter(_n__gte=n))
    if op == "exactly":
        return _customers_in(grouped.filter(_n=n))
    return ~_customers_in(grouped.filter(_n__gt=n))  # at most n: not among those with more


def _holds_for_zero(op: str, value: Any) -> bool:
    """Whether a positive comparison holds for a customer with no orders (count and revenue are 0)."""
    if op == "is_set":
        return True
    if op == "between":
        return bool(value[0] <= 0 <= value[1])
    return {"eq": value == 0, "gt": value < 0, "gte": value <= 0, "lt": value > 0, "lte": value >= 0}[op]


class Compiler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def node(self, node: Node) -> Q:
        if isinstance(node, Condition):
            return self.condition(node)
        parts: list[Q] = []
        merged: list[tuple[Any, Q]] = []
        for child in node.children:
            shared = self._having(child, f"_h{len(merged)}") if isinstance(child, Condition) else None
            if shared is None:
                parts.append(self.node(child))
            else:
                merged.append(shared)
        if merged:
            # Sibling conditions on order aggregates share one grouped pass: HAVING c1 AND/OR c2.
            grouped = (
                _revenue_orders().values("customer_id").annotate(**{f"_h{i}": a for i, (a, _) in enumerate(merged)})
            )
            having = merged[0][1]
            for _, cond in merged[1:]:
                having = having & cond if node.mode == "all" else having | cond
            parts.append(_customers_in(grouped.filter(having)))
        if not parts:
            combined = Q()
        else:
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if node.mode == "all" else combined | part
        if node.negate:
            return ~combined if parts else Q(pk__isnull=True)  # NOT(everyone) = no one
        return combined

    def condition(self, c: Condition) -> Q:
        if c.op in NEGATIONS and c.field != "segment":
            return ~self.condition(Condition(c.field, NEGATIONS[c.op], c.value, c.params, c.path))
        key = c.field
        if key in PROFILE_COLUMNS:
            spec = FIELDS_BY_KEY[key]
            if spec.type == "bool":
                return Q(**{key: c.op == "is_true"})
            cond = _compare(F(key), spec.type, c.op, c.value, self.ctx)
            return _truth(cond) if spec.nullable else cond
        if key == "attribute":
            return self.attribute(c)
        if key in ORDER_AGGREGATES:
            return self.order_aggregate(c)
        if key == "days_since_last_order":
            return self.days_since_last_order(c)
        if key == "categories_bought":
            lines = OrderLine.objects.filter(order__status__in=REVENUE_STATUSES)
            if c.op == "includes_all":
                return Q(*[_customers_in(lines.filter(product__category=cat), "order__customer_id") for cat in c.value])
            return _customers_in(lines.filter(product__category__in=c.value), "order__customer_id")
        if key == "category_share":
            return self.category_share(c)
        if key == "event":
            events = Event.objects.filter(type=c.params["event_type"])
            if "event_name" in c.params:
                events = events.filter(name__iexact=c.params["event_name"])
            for prop, value in c.params.get("properties", {}).items():
                events = events.filter(**{f"properties__{prop}": value})
            if "days" in c.params:
                events = events.filter(occurred_at__gte=self.ctx.now - timedelta(days=c.params["days"]))
            return _count(events, c.op, c.value)
        if key == "orders_in_window":
            orders = _revenue_orders().filter(placed_at__gte=self.ctx.now - timedelta(days=c.params["days"]))
            return _count(orders, c.op, c.value)
        if key in SCORE_COLUMNS:
            # Customers without a score match no positive comparison (their NOT twins do match them).
            vtype: str = FIELDS_BY_KEY[key].type
            if vtype == "choice" and c.op == "is_set":
                vtype = "choice_text" if key != "cluster" else "choice"
            return _customers_in(CustomerScore.objects.filter(_compare(F(key), vtype, c.op, c.value, self.ctx)))
        if key == "segment":
            return self.segment(c)
        raise AssertionError(f"no compiler for field {key}")

    def attribute(self, c: Condition) -> Q:
        parts = tuple(c.params["path"].split("."))
        lookup_path = "attributes__" + "__".join(parts)
        jtype = JsonTypeOf("attributes", parts)
        atype = c.params["type"]
        if c.op == "is_set":
            return _truth(Q(IsNull(jtype, False)) & ~Q(Exact(jtype, "null")))
        if atype == "bool":
            return _truth(Q(**{lookup_path: c.op == "is_true"}))
        text = KT(lookup_path)
        if atype == "number":
            # Cast only what is a JSON number: a text value must not make the whole query fail.
            number = Case(When(Q(Exact(jtype, "number")), then=Cast(text, FloatField())), default=Value(None))
            return _truth(_compare(number, "number", c.op, c.value, self.ctx))
        if atype == "date":
            guarded = Case(When(Q(Exact(jtype, "string")), then=text), default=Value(None), output_field=CharField())
            return _truth(_date_text_compare(guarded, c.op, c.value, self.ctx))
        return _truth(_compare(text, "text", c.op, c.value, self.ctx))

    def category_share(self, c: Condition) -> Q:
        """The category's share of the customer's revenue order lines (quantity x unit price), in one grouped pass;
        customers without order lines have no share (they match no comparison, and every NOT of one)."""
        amount = ExpressionWrapper(F("quantity") * F("unit_price"), output_field=DecimalField())
        in_category = Case(
            When(product__category=c.params["category"], then=amount), default=Value(0), output_field=DecimalField()
        )
        grouped = (
            OrderLine.objects.filter(order__status__in=REVENUE_STATUSES)
            .order_by()
            .values("order__customer_id")
            .annotate(_total=Sum(amount), _in=Sum(in_category))
            .filter(_total__gt=0)
            .annotate(_v=Cast(F("_in"), FloatField()) / Cast(F("_total"), FloatField()))
        )
        if c.op == "is_set":
            return _customers_in(grouped, "order__customer_id")
        return _customers_in(grouped.filter(_compare(F("_v"), "number", c.op, c.value, self.ctx)), "order__customer_id")

    def _having(self, c: Condition, name: str) -> tuple[Any, Q] | None:
        """(aggregate, HAVING condition on `name`) when `c` is a semi-join over the customers' grouped orders,
        so that siblings can share one grouped pass; None otherwise."""
        if c.op in NEGATIONS or c.op == "is_set":
            return None
        if c.field == "days_since_last_order":
            return Max("placed_at"), self._days_since(F(name), c)
        if c.field in ORDER_AGGREGATES:
            aggregate, vtype, zero_counts = ORDER_AGGREGATES[c.field]
            if zero_counts and _holds_for_zero(c.op, c.value):
                return None  # also true for customers without orders: an anti-join, compiled on its own
            return aggregate, _compare(F(name), vtype, c.op, c.value, self.ctx)
        return None

    def order_aggregate(self, c: Condition) -> Q:
        """Count, revenue, average, first and last order: one grouped pass over the revenue orders, filtered in
        HAVING. Where the comparison also holds for a customer with no orders (revenue < 50), the customers are
        those *not* among the ones with orders that fail it."""
        aggregate, vtype, zero_counts = ORDER_AGGREGATES[c.field]
        grouped = _revenue_orders().values("customer_id").annotate(_v=aggregate)
        if c.op == "is_set":
            return Q(pk__isnull=False) if zero_counts else _customers_in(grouped)
        cond = _compare(F("_v"), vtype, c.op, c.value, self.ctx)
        if zero_counts and _holds_for_zero(c.op, c.value):
            return ~_customers_in(grouped.filter(~cond))
        return _customers_in(grouped.filter(cond))

    def days_since_last_order(self, c: Condition) -> Q:
        """Whole days since the last order, as bounds on the last order's time (no date maths in SQL)."""
        grouped = _revenue_orders().values("customer_id").annotate(_v=Max("placed_at"))
        if c.op == "is_set":
            return _customers_in(grouped)
        return _customers_in(grouped.filter(self._days_since(F("_v"), c)))

    def _days_since(self, last: Any, c: Condition) -> Q:
        now = self.ctx.now

        def ago(days: int) -> datetime:
            return now - timedelta(days=days)

        n = c.value
        if c.op == "eq":
            return Q(GreaterThan(last, ago(n + 1))) & Q(LessThanOrEqual(last, ago(n)))
        if c.op == "gt":
            return Q(LessThanOrEqual(last, ago(n + 1)))
        if c.op == "gte":
            return Q(LessThanOrEqual(last, ago(n)))
        if c.op == "lt":
            return Q(GreaterThan(last, ago(n)))
        if c.op == "lte":
            return Q(GreaterThan(last, ago(n + 1)))
        low, high = c.value
        return Q(GreaterThan(last, ago(high + 1))) & Q(LessThanOrEqual(last, ago(low)))

    def segment(self, c: Condition) -> Q:
        seg = self.ctx.segments.get(c.value)
        if seg is None:
            raise DefinitionError([Problem(c.path, f"Rule segment {c.value} does not exist.")])
        if seg.kind == SegmentKind.STATIC:
            cond = _customers_in(SegmentMember.objects.filter(segment_id=seg.pk))
        else:
            if seg.pk in self.ctx.stack:
                names = " → ".join(self.ctx.segments[s].name for s in (*self.ctx.stack, seg.pk))
                raise DefinitionError([Problem(c.path, f"Segments refer to each other in a loop: {names}.")])
            if len(self.ctx.stack) >= MAX_SEGMENT_NESTING:
                raise DefinitionError(
                    [Problem(c.path, f"Segments may refer to segments at most {MAX_SEGMENT_NESTING} levels deep.")]
                )
            try:
                tree = parse(seg.definition, self.ctx.catalog, segment_id=seg.pk)
            except DefinitionError as exc:
                raise DefinitionError([Problem(c.path, f'Segment "{seg.name}" is no longer valid: {exc}')]) from exc
            inner = Compiler(
                Context(self.ctx.now, self.ctx.tz, self.ctx.catalog, self.ctx.segments, (*self.ctx.stack, seg.pk))
            )
            cond = inner.node(tree)
        return ~cond if c.op == "not_in" else cond


def compile_definition(tree: Group, ctx: Context) -> Q:
    """The filter of customers matching `tree`; raises DefinitionError on segment loops."""
    return Compiler(ctx).node(tree)


def customers_matching(tree: Group, ctx: Context) -> QuerySet[Customer]:
    """The current tenant's customers matching `tree`: one SQL query."""
    return Customer.objects.filter(compile_definition(tree, ctx))
