"""seed_demo --tenant SLUG [--customers N] [--orders N] [--seed N] [--end-date YYYY-MM-DD] [--reset]

Generate the demo dataset of a coffee roaster (journeys.demo.generator) into a tenant, fast: COPY on
PostgreSQL, batched inserts on SQLite. A tenant that already has customers is left alone (exit 0)
unless --reset, which first deletes its customers, products, orders, events and feedback.

Deterministic: the same --seed and --end-date give the same data. --end-date defaults to today (UTC), so
that the demo always runs up to now: without it, the same seed gives the same data on the same day only;
pass --end-date to reproduce a dataset on another day.
"""

from __future__ import annotations

import time
import zoneinfo
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from journeys import bulk
from journeys.demo import generator as gen
from journeys.models import Customer, Event, Feedback, Order, OrderLine, Product, VisitorIdentity
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Generate a realistic, deterministic demo dataset (a coffee roaster) for a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Slug of the tenant")
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--orders", type=int, default=None, help="Default: 6 per customer")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--end-date",
            default=None,
            help="Day the data ends (default: today, UTC; give it to reproduce a seed's data on another day)",
        )
        parser.add_argument("--reset", action="store_true", help="Delete the tenant's customer data first")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(
                f"No tenant with slug {options['tenant']!r} (create it with setup_demo or create_tenant)."
            )
        customers, seed = options["customers"], options["seed"]
        orders = options["orders"] if options["orders"] is not None else gen.default_orders(customers)
        if customers < 1 or orders < 0:
            raise CommandError("--customers must be at least 1 and --orders at least 0.")
        end = date.fromisoformat(options["end_date"]) if options["end_date"] else timezone.now().date()
        self.verbosity = options["verbosity"]
        started = time.monotonic()
        with tenant_context(tenant), transaction.atomic():
            existing = Customer.objects.count()
            if existing and not options["reset"]:
                self.stdout.write(
                    f"{tenant.name} already has {existing} customers; nothing generated (use --reset to replace them)."
                )
                return
            if options["reset"]:
                self._reset()
            counts = self._generate(tenant, customers=customers, orders=orders, seed=seed, end=end)
        if connection.vendor == "postgresql":
            # Fresh statistics: on the empty-table estimates the planner picks nested loops over millions of rows.
            tables = [m._meta.db_table for m in (Customer, Product, Order, OrderLine, Event, Feedback, VisitorIdentity)]
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {', '.join(tables)}")
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Seeded {tenant.name} ({tenant.slug}): {summary} in {elapsed:.1f} s."))

    def _reset(self) -> None:
        for model in (Feedback, Event, VisitorIdentity, OrderLine, Order, Customer, Product):
            model.objects.all()._raw_delete(connection.alias)  # type: ignore[attr-defined]

    def _generate(self, tenant: Tenant, *, customers: int, orders: int, seed: int, end: date) -> dict[str, int]:
        now = timezone.now()
        products = [
            Product(
                tenant=tenant, sku=p.sku, name=p.name, description=p.description, category=p.category,
                price=gen._money(p.price_cents), currency=tenant.currency, created=now, updated=now,
                in_stock=p.sku != "GRINDER-HAND",
            )
            for p in gen.PRODUCTS
        ]  # fmt: skip
        Product.objects.bulk_create(products)
        product_ids = dict(Product.objects.values_list("sku", "id"))
        cfg = gen.DemoConfig(
            tenant_id=tenant.pk, customers=customers, orders=orders, seed=seed, end=end,
            tz=zoneinfo.ZoneInfo(tenant.timezone), currency=tenant.currency,
        )  # fmt: skip
        demo = gen.DemoGenerator(
            cfg,
            customer_ids=bulk.reserve_ids(Customer, customers),
            order_ids=bulk.reserve_ids(Order, orders),
            product_ids=product_ids,
        )
        loaders = {
            "customers": bulk.TableLoader(Customer, gen.CUSTOMER_COLUMNS),
            "orders": bulk.TableLoader(Order, gen.ORDER_COLUMNS),
            "order lines": bulk.TableLoader(OrderLine, gen.LINE_COLUMNS),
            "events": bulk.TableLoader(Event, gen.EVENT_COLUMNS),
            "feedback responses": bulk.TableLoader(Feedback, gen.FEEDBACK_COLUMNS),
            "visitor ids": bulk.TableLoader(VisitorIdentity, gen.VISITOR_COLUMNS),
        }
        for loader in loaders.values():
            loader.__enter__()
        try:
            done = 0
            for block in demo.blocks():
                loaders["customers"].load(block.customers)
                loaders["orders"].load(block.orders)
                loaders["order lines"].load(block.lines)
                loaders["events"].load(block.events)
                loaders["feedback responses"].load(block.feedback)
                loaders["visitor ids"].load(block.visitors)
                done += len(block.customers)
                if self.verbosity > 1:
                    self.stdout.write(f"  {done:,} of {customers:,} customers generated")
        except BaseException as exc:
            for loader in loaders.values():
                loader.__exit__(type(exc), exc, exc.__traceback__)
            raise
        for loader in loaders.values():  # customers first: the others refer to them
            loader.__exit__(None, None, None)
        return {"products": len(products), **{name: loader.count for name, loader in loaders.items()}}
