"""The rule-segment condition language: parsing and validation, with no Django and no database.

A definition is JSON. Groups nest: ``{"all": [...]}`` (AND), ``{"any": [...]}`` (OR) and
``{"not": <node>}``. A leaf names a field, an operator and a value, plus the field's own
parameters::

    {"field": "revenue", "op": "gte", "value": 100}
    {"field": "attribute", "path": "plan.tier", "type": "text", "op": "eq", "value": "gold"}
    {"field": "event", "event_type": "product_view", "days": 7, "op": "at_least", "value": 1}
    {"field": "orders_in_window", "days": 7, "op": "none"}
    {"field": "segment", "op": "in", "value": 12}

`parse` checks everything and returns a typed tree (or raises DefinitionError listing every
problem, each with the path of the condition and a message naming its field, operator and
value); `dump` writes the tree back as canonical JSON. `personalization.rules.compiler`
turns the tree into one SQL query.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, datetime
from typing import Any, Literal

from personalization.ml.rfm import SEGMENTS as RFM_SEGMENTS

MAX_DEPTH = 6
MAX_CONDITIONS = 100
MAX_DAYS = 36500
MAX_LIST = 200
MAX_TEXT = 500

ValueType = Literal["text", "number", "integer", "date", "bool", "choice", "set", "segment", "count"]

OP_LABELS: dict[str, str] = {
    "eq": "is",
    "neq": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "before": "is before",
    "after": "is after",
    "in_last_days": "is in the last (days)",
    "more_than_days_ago": "is more than (days) ago",
    "is_set": "is set",
    "is_not_set": "is not set",
    "is_true": "is true",
    "is_false": "is false",
    "in": "is one of",
    "not_in": "is none of",
    "includes_any": "includes any of",
    "includes_all": "includes all of",
    "includes_none": "includes none of",
    "at_least": "at least (times)",
    "at_most": "at most (times)",
    "exactly": "exactly (times)",
    "none": "zero times",
}

# What the value of each operator must be: none, text, number, date, days, list, pair, id, count.
OP_VALUE: dict[str, str] = {
    "eq": "scalar", "neq": "scalar", "contains": "text", "not_contains": "text", "starts_with": "text",
    "ends_with": "text", "gt": "scalar", "gte": "scalar", "lt": "scalar", "lte": "scalar", "between": "pair",
    "before": "date", "after": "date", "in_last_days": "days", "more_than_days_ago": "days", "is_set": "none",
    "is_not_set": "none", "is_true": "none", "is_false": "none", "in": "list", "not_in": "list",
    "includes_any": "list", "includes_all": "list", "includes_none": "list", "at_least": "count",
    "at_most": "count", "exactly": "count", "none": "none",
}  # fmt: skip

TYPE_OPS: dict[str, tuple[str, ...]] = {
    "text": ("eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set"),
    "number": ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"),
    "integer": ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"),
    "date": ("before", "after", "between", "in_last_days", "more_than_days_ago", "is_set", "is_not_set"),
    "bool": ("is_true", "is_false"),
    "choice": ("in", "not_in", "is_set", "is_not_set"),
    "set": ("includes_any", "includes_all", "includes_none"),
    "segment": ("in", "not_in"),
    "count": ("at_least", "at_most", "exactly", "none"),
}

ATTRIBUTE_TYPES = ("text", "number", "bool", "date")
_PATH_PART = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_PROPERTY_KEY = _PATH_PART


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    group: str
    type: ValueType
    help: str = ""
    nullable: bool = False
    # Extra parameters the leaf carries ("path", "type", "event_type", "event_name", "properties", "days").
    params: tuple[str, ...] = ()


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("email", "Email", "Profile", "text"),
    FieldSpec("name", "Name", "Profile", "text"),
    FieldSpec("external_id", "Customer id", "Profile", "text"),
    FieldSpec("phone", "Phone", "Profile", "text"),
    FieldSpec("created", "Created", "Profile", "date"),
    FieldSpec("first_seen", "First seen", "Profile", "date", nullable=True),
    FieldSpec("last_seen", "Last seen", "Profile", "date", nullable=True),
    FieldSpec("consent_marketing", "Marketing consent", "Profile", "bool"),
    FieldSpec("consent_personalization", "Personalization consent", "Profile", "bool"),
    FieldSpec("attribute", "Custom attribute", "Profile", "text", "a key of the customer's attributes", True,
              ("path", "type")),
    FieldSpec("orders_count", "Number of orders", "Orders", "integer", "placed, paid or fulfilled orders"),
    FieldSpec("revenue", "Revenue", "Orders", "number", "total of placed, paid or fulfilled orders"),
    FieldSpec("aov", "Average order value", "Orders", "number", "revenue ÷ orders", True),
    FieldSpec("days_since_last_order", "Days since last order", "Orders", "integer", "", True),
    FieldSpec("first_order_at", "First order", "Orders", "date", "", True),
    FieldSpec("last_order_at", "Last order", "Orders", "date", "", True),
    FieldSpec("categories_bought", "Categories bought", "Orders", "set", "product categories ever ordered"),
    FieldSpec("category_share", "Share of spend in a category", "Orders", "number",
              "0 to 1: the category's part of the customer's order lines", True, ("category",)),
    FieldSpec("event", "Did an event", "Behaviour", "count", "how many times, optionally within the last N days",
              params=("event_type", "event_name", "properties", "days")),
    FieldSpec("orders_in_window", "Placed orders", "Behaviour", "count", "orders within the last N days",
              params=("days",)),
    FieldSpec("tenure_days", "Tenure (days)", "Features", "integer", "days since first seen, at the last scoring run",
              True),
    FieldSpec("avg_days_between_orders", "Average days between orders", "Features", "number",
              "repeat buyers only, at the last scoring run", True),
    FieldSpec("events_30d", "Events in the last 30 days", "Features", "integer", "at the last scoring run", True),
    FieldSpec("support_contacts", "Support contacts", "Features", "integer", "all time, at the last scoring run",
              True),
    FieldSpec("avg_csat", "CSAT average", "Features", "number", "1 to 5, customers who answered a CSAT survey",
              True),
    FieldSpec("probability_alive", "Probability still a customer", "Predictions", "number", "0 to 1", True),
    FieldSpec("churn_risk", "Churn risk", "Predictions", "number", "0 to 1", True),
    FieldSpec("churn_band", "Churn risk band", "Predictions", "choice"),
    FieldSpec("expected_orders_90d", "Expected orders, next 90 days", "Predictions", "number", "", True),
    FieldSpec("expected_orders_365d", "Expected orders, next 365 days", "Predictions", "number", "", True),
    FieldSpec("predicted_value_365d", "Predicted value, next 365 days", "Predictions", "number", "", True),
    FieldSpec("historic_value", "Historic value (scored)", "Predictions", "number", "", True),
    FieldSpec("r_score", "Recency score (1–5)", "Predictions", "integer", "", True),
    FieldSpec("f_score", "Frequency score (1–5)", "Predictions", "integer", "", True),
    FieldSpec("m_score", "Monetary score (1–5)", "Predictions", "integer", "", True),
    FieldSpec("rfm_segment", "RFM segment", "Segments", "choice"),
    FieldSpec("cluster", "Cluster", "Segments", "choice"),
    FieldSpec("segment", "Rule segment", "Segments", "segment"),
)  # fmt: skip
FIELDS_BY_KEY: dict[str, FieldSpec] = {f.key: f for f in FIELDS}
# Fields read from the scoring run's rows (offered once the tenant has scores).
PREDICTION_FIELDS = frozenset(f.key for f in FIELDS if f.group in ("Predictions", "Features")) | {
    "rfm_segment",
    "cluster",
}


@dataclass(frozen=True)
class Catalog:
    """What a tenant's definitions may refer to (loaded from the database by the caller)."""

    event_types: tuple[str, ...]
    segments: Mapping[int, str] = dc_field(default_factory=dict)  # id -> name of the tenant's rule segments
    clusters: Mapping[int, str] = dc_field(default_factory=dict)  # stable cluster id -> name
    churn_bands: tuple[str, ...] = ("low", "medium", "high")
    rfm_segments: tuple[str, ...] = RFM_SEGMENTS
    categories: tuple[str, ...] = ()  # the tenant's product categories, offered by the builder

    def choices(self, key: str) -> list[tuple[Any, str]]:
        if key == "churn_band":
            return [(b, b.capitalize()) for b in self.churn_bands]
        if key == "rfm_segment":
            return [(s, s) for s in self.rfm_segments]
        if key == "cluster":
            return sorted(self.clusters.items())
        if key == "segment":
            return sorted(self.segments.items(), key=lambda kv: kv[1].lower())
        if key == "event_type":
            return [(t, t.replace("_", " ").capitalize()) for t in self.event_types]
        if key == "category":
            return [(c, c) for c in self.categories]
        return []


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None
    params: Mapping[str, Any] = dc_field(default_factory=dict)
    path: str = ""  # where it sits in the definition, for messages


@dataclass(frozen=True)
class Group:
    mode: Literal["all", "any"]
    children: tuple[Node, ...]
    negate: bool = False
    path: str = ""


Node = Condition | Group


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DefinitionError(ValueError):
    """The definition is not valid; `problems` lists each one with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(f"{p.path or 'definition'}: {p.message}" for p in self.problems))

    def as_list(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.problems]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_date(v: Any) -> date | datetime | None:
    """An ISO date ("2025-03-01") or date-time; None when `v` is not one."""
    if not isinstance(v, str) or not 10 <= len(v) <= 40:
        return None
    try:
        return datetime.fromisoformat(v) if len(v) > 10 else date.fromisoformat(v)
    except ValueError:
        return None


def _describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


class _Parser:
    def __init__(self, catalog: Catalog, *, segment_id: int | None) -> None:
        self.catalog = catalog
        self.segment_id = segment_id
        self.problems: list[Problem] = []
        self.count = 0

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def node(self, data: Any, path: str, depth: int) -> Node | None:
        if not isinstance(data, dict):
            self.fail(path, f"Expected a condition or a group (an object), got {_describe(data)}.")
            return None
        if depth > MAX_DEPTH:
            self.fail(path, f"Groups nest at most {MAX_DEPTH} levels deep.")
            return None
        if "not" in data:
            if len(data) != 1:
                self.fail(path, 'A "not" group has only the "not" key.')
                return None
            inner = self.node(data["not"], f"{path}.not" if path else "not", depth + 1)
            if inner is None:
                return None
            if isinstance(inner, Group):
                return Group(inner.mode, inner.children, not inner.negate, inner.path)
            return Group("all", (inner,), True, path)
        modes = [k for k in ("all", "any") if k in data]
        if modes:
            if len(modes) > 1 or len(data) != 1:
                self.fail(path, 'A group has exactly one key: "all" (every condition) or "any" (at least one).')
                return None
            mode = modes[0]
            items = data[mode]
            if not isinstance(items, list):
                self.fail(path, f'"{mode}" must be a list of conditions.')
                return None
            if not items and depth > 0:
                self.fail(path, "This group is empty: add a condition or remove the group.")
                return None
            children = []
            for i, item in enumerate(items):
                child = self.node(item, f"{path}.{mode}[{i}]" if path else f"{mode}[{i}]", depth + 1)
                if child is not None:
                    children.append(child)
            return Group(mode, tuple(children), False, path)  # type: ignore[arg-type]
        return self.condition(data, path)

    def condition(self, data: dict[str, Any], path: str) -> Condition | None:
        self.count += 1
        if self.count > MAX_CONDITIONS:
            if self.count == MAX_CONDITIONS + 1:
                self.fail(path, f"A segment has at most {MAX_CONDITIONS} conditions.")
            return None
        key = data.get("field")
        if not isinstance(key, str) or key not in FIELDS_BY_KEY:
            known = ", ".join(FIELDS_BY_KEY)
            self.fail(path, f"Unknown field {_describe(key)}; choose one of: {known}.")
            return None
        spec = FIELDS_BY_KEY[key]
        allowed_keys = {"field", "op", "value", *spec.params}
        extra = sorted(set(data) - allowed_keys)
        if extra:
            self.fail(path, f'"{key}" does not take {", ".join(extra)}.')
            return None
        params = self.params(spec, data, path)
        if params is None:
            return None
        vtype: str = params.get("type", spec.type) if key == "attribute" else spec.type
        op = data.get("op")
        ops = TYPE_OPS[vtype]
        if op not in ops:
            self.fail(
                path,
                f'"{spec.label}" has no operator {_describe(op)}; use one of: {", ".join(ops)}.',
            )
            return None
        value = self.value(spec, vtype, op, data.get("value"), path, has_value="value" in data)
        if value is _INVALID:
            return None
        return Condition(key, op, value, params, path)

    def params(self, spec: FieldSpec, data: dict[str, Any], path: str) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        ok = True
        if spec.key == "attribute":
            raw = data.get("path")
            parts = raw.split(".") if isinstance(raw, str) else []
            if not parts or not all(_PATH_PART.match(p) for p in parts) or len(parts) > 5:
                self.fail(path, f'Attribute path {_describe(raw)} is not valid: use keys of letters, digits, "_" '
                          'or "-", separated by dots (at most 5), like "plan.tier".')  # fmt: skip
                ok = False
            else:
                params["path"] = ".".join(parts)
            atype = data.get("type", "text")
            if atype not in ATTRIBUTE_TYPES:
                self.fail(path, f"Attribute type {_describe(atype)} is not one of: {', '.join(ATTRIBUTE_TYPES)}.")
                ok = False
            params["type"] = atype
        if spec.key == "event":
            etype = data.get("event_type")
            if etype not in self.catalog.event_types:
                self.fail(path, f"Event type {_describe(etype)} is not one of: {', '.join(self.catalog.event_types)}.")
                ok = False
            params["event_type"] = etype
            name = data.get("event_name", "")
            if not isinstance(name, str) or len(name) > 200:
                self.fail(path, "The event name must be text of at most 200 characters.")
                ok = False
            elif name.strip():
                params["event_name"] = name.strip()
            props = data.get("properties", {})
            if props in (None, ""):
                props = {}
            if not isinstance(props, dict) or len(props) > 10:
                self.fail(path, "Event properties must be an object of at most 10 key: value pairs.")
                ok = False
            else:
                for k, v in props.items():
                    if not _PROPERTY_KEY.match(k) or not (isinstance(v, str | bool) or _is_number(v)):
                        self.fail(path, f"Event property {_describe(k)}: {_describe(v)} is not valid: keys are "
                                  "letters, digits, _ or -, values are text, numbers or true/false.")  # fmt: skip
                        ok = False
                if props:
                    params["properties"] = dict(props)
        if spec.key == "category_share":
            category = data.get("category")
            if not isinstance(category, str) or not category.strip() or len(category) > 200:
                self.fail(path, f"The category of \"{spec.label}\" must be a product category (text of at most 200 "
                          f"characters), got {_describe(category)}.")  # fmt: skip
                ok = False
            else:
                params["category"] = category.strip()
        if "days" in spec.params:
            days = data.get("days")
            required = spec.key == "orders_in_window"
            if days in (None, "") and not required:
                pass
            elif not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
                self.fail(path, f"The window (days) of \"{spec.label}\" must be a whole number from 1 to {MAX_DAYS}, "
                          f"got {_describe(days)}.")  # fmt: skip
                ok = False
            else:
                params["days"] = days
        return params if ok else None

    def value(self, spec: FieldSpec, vtype: str, op: str, v: Any, path: str, *, has_value: bool) -> Any:
        kind = OP_VALUE[op]
        where = f'"{spec.label}" {OP_LABELS[op]}'

        def bad(expected: str) -> object:
            self.fail(path, f"{where}: the value {_describe(v)} is not valid; expected {expected}.")
            return _INVALID

        if kind == "none":
            if has_value and v not in (None, "", []):
                return bad("no value")
            return None
        if kind == "scalar":
            kind = "number" if vtype in ("number", "integer") else "text"
        if kind == "text":
            if not isinstance(v, str) or not v.strip() or len(v) > MAX_TEXT:
                return bad(f"non-empty text of at most {MAX_TEXT} characters")
            return v.strip()
        if kind == "number":
            if vtype == "integer":
                return v if _is_int(v) else bad("a whole number")
            return v if _is_number(v) else bad("a number")
        if kind == "date":
            return v if parse_date(v) is not None else bad('a date such as "2025-03-01"')
        if kind in ("days", "count"):
            low = 1 if kind == "days" else 0
            if not _is_int(v) or not low <= v <= MAX_DAYS:
                return bad(f"a whole number from {low} to {MAX_DAYS}")
            return v
        if kind == "pair":
            if not isinstance(v, list) or len(v) != 2:
                return bad("two values [low, high]")
            if vtype == "date":
                first, last = parse_date(v[0]), parse_date(v[1])
                if first is None or last is None:
                    return bad('two dates such as ["2025-01-01", "2025-03-31"]')
                if str(v[0]) > str(v[1]):
                    return bad("the first date on or before the second")
                return list(v)
            check = _is_int if vtype == "integer" else _is_number
            if not all(check(x) for x in v):
                return bad("two whole numbers" if vtype == "integer" else "two numbers")
            if v[0] > v[1]:
                return bad("the low value first")
            return list(v)
        if kind == "list":
            return self.choice_list(spec, vtype, v, where, path)
        raise AssertionError(f"unhandled value kind {kind}")

    def choice_list(self, spec: FieldSpec, vtype: str, v: Any, where: str, path: str) -> Any:
        if vtype == "segment":
            # "in"/"not_in" of a rule segment take one segment id.
            if not _is_int(v) or v not in self.catalog.segments:
                self.fail(path, f"{where}: segment {_describe(v)} does not exist; choose one of your rule segments.")
                return _INVALID
            if v == self.segment_id:
                self.fail(path, f"{where}: a segment cannot refer to itself.")
                return _INVALID
            return v
        items = v if isinstance(v, list) else None
        if not items or len(items) > MAX_LIST:
            self.fail(path, f"{where}: the value {_describe(v)} is not valid; expected a list of 1 to {MAX_LIST} "
                      "values.")  # fmt: skip
            return _INVALID
        if spec.key == "categories_bought":
            if not all(isinstance(x, str) and x.strip() for x in items):
                self.fail(path, f"{where}: every category must be non-empty text, got {_describe(v)}.")
                return _INVALID
            return sorted({x.strip() for x in items})
        known = dict(self.catalog.choices(spec.key))
        unknown = [x for x in items if x not in known]
        if unknown:
            options = ", ".join(str(k) for k in known) or "none yet"
            self.fail(path, f"{where}: {_describe(unknown[0])} is not a {spec.label.lower()}; choose from: {options}.")
            return _INVALID
        return sorted(set(items), key=str)


_INVALID: Any = object()


def parse(data: Any, catalog: Catalog, *, segment_id: int | None = None, allow_empty: bool = True) -> Group:
    """Validate a definition against the tenant's catalog; return its tree or raise DefinitionError."""
    parser = _Parser(catalog, segment_id=segment_id)
    if data in (None, ""):
        data = {"all": []}
    root = parser.node(data, "", 0)
    if root is not None and not isinstance(root, Group):
        root = Group("all", (root,), False, "")
    if root is not None and not root.children and not allow_empty and not parser.problems:
        parser.fail("", "Add at least one condition.")
    if parser.problems or root is None:
        raise DefinitionError(parser.problems or [Problem("", "The definition is not valid.")])
    return root


def dump(node: Node) -> dict[str, Any]:
    """The canonical JSON of a parsed tree (what is stored)."""
    if isinstance(node, Group):
        inner: dict[str, Any] = {node.mode: [dump(c) for c in node.children]}
        return {"not": inner} if node.negate else inner
    out: dict[str, Any] = {"field": node.field, "op": node.op}
    if node.value is not None:
        out["value"] = node.value
    out.update(node.params)
    return out


def walk(node: Node) -> Iterable[Condition]:
    """Every condition in the tree, depth first."""
    if isinstance(node, Condition):
        yield node
        return
    for child in node.children:
        yield from walk(child)


def referenced_segments(data: Any) -> set[int]:
    """Ids of the rule segments a stored (already valid) definition refers to."""
    found: set[int] = set()

    def visit(d: Any) -> None:
        if isinstance(d, dict):
            if d.get("field") == "segment" and _is_int(d.get("value")):
                found.add(d["value"])
            for v in d.values():
                visit(v)
        elif isinstance(d, list):
            for v in d:
                visit(v)

    visit(data)
    return found


def catalog_json(catalog: Catalog, *, predictions: bool) -> dict[str, Any]:
    """The fields, operators and choices, as the builder and the API describe them."""
    fields = []
    for spec in FIELDS:
        if spec.key in PREDICTION_FIELDS and not predictions:
            continue
        entry: dict[str, Any] = {
            "key": spec.key, "label": spec.label, "group": spec.group, "type": spec.type, "help": spec.help,
            "params": list(spec.params), "ops": list(TYPE_OPS[spec.type]),
        }  # fmt: skip
        choices = catalog.choices(spec.key)
        if spec.type in ("choice", "segment"):
            entry["choices"] = [[k, v] for k, v in choices]
        fields.append(entry)
    return {
        "fields": fields,
        "ops": {op: {"label": OP_LABELS[op], "value": OP_VALUE[op]} for op in OP_LABELS},
        "type_ops": {k: list(v) for k, v in TYPE_OPS.items()},
        "attribute_types": list(ATTRIBUTE_TYPES),
        "event_types": [[k, v] for k, v in catalog.choices("event_type")],
    }


def _value_words(spec: FieldSpec, op: str, value: Any, catalog: Catalog) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and op == "between":
        return f"{value[0]} and {value[1]}"
    if isinstance(value, list):
        names = dict(catalog.choices(spec.key))
        return " or ".join(str(names.get(v, v)) for v in value)
    if isinstance(value, str):
        return f"“{value}”" if OP_VALUE[op] in ("text", "scalar") else value
    return str(value)


def _condition_words(c: Condition, catalog: Catalog) -> str:
    spec = FIELDS_BY_KEY[c.field]
    op_words = OP_LABELS[c.op].replace(" (days)", "").replace(" (times)", "")
    value = _value_words(spec, c.op, c.value, catalog)
    if c.field == "segment":
        name = catalog.segments.get(c.value, f"#{c.value}")
        return f"{'in' if c.op == 'in' else 'not in'} segment “{name}”"
    if c.field in ("event", "orders_in_window"):
        if c.field == "event":
            subject = dict(catalog.choices("event_type")).get(c.params["event_type"], c.params["event_type"])
            details = [f"named “{c.params['event_name']}”"] if "event_name" in c.params else []
            details += [f"{k}={v}" for k, v in c.params.get("properties", {}).items()]
            subject += f" ({', '.join(details)})" if details else ""
        else:
            subject = "orders"
        window = f" in the last {c.params['days']} days" if "days" in c.params else ("" if c.op == "none" else " ever")
        times = (
            "never" if c.op == "none" else f"{op_words.replace('zero times', 'no')} {value} time{'s' * (value != '1')}"
        )
        return f"{subject}{window}: {times}"
    if c.field == "attribute":
        subject = f"attribute “{c.params['path']}”"
    elif c.field == "category_share":
        subject = f"share of spend in “{c.params['category']}”"
    else:
        subject = spec.label.lower() if spec.group != "Profile" or c.field != "email" else "email"
    if c.op in ("in_last_days", "more_than_days_ago"):
        return f"{subject} {op_words.replace('(days)', '').replace(' ago', '').strip()} {value} days" + (
            " ago" if c.op == "more_than_days_ago" else ""
        )
    return f"{subject} {op_words}{' ' + value if value else ''}"


def describe(node: Node, catalog: Catalog, *, top: bool = True) -> str:
    """The definition in plain words: "orders in the last 7 days: never and (email ends with “x” or ...)"."""
    if isinstance(node, Condition):
        return _condition_words(node, catalog)
    if not node.children:
        text = "everyone"
    else:
        joiner = " and " if node.mode == "all" else " or "
        parts = [describe(child, catalog, top=False) for child in node.children]
        text = joiner.join(parts)
        if not top and len(parts) > 1:
            text = f"({text})"
    return f"not {text if text.startswith('(') else '(' + text + ')'}" if node.negate else text
