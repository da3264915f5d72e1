"""Create the demo business and its logins (idempotent). Used by `make run`."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tenants.context import all_tenants, tenant_context
from tenants.models import Membership, Role, Tenant, User
from tenants.services import tenant_create

DEMO_PASSWORD = "demo-password-1"
DEMO_USERS = [("owner@demo.test", "Olivia Owner", Role.OWNER), ("agent@demo.test", "Arjun Agent", Role.AGENT),
              ("analyst@demo.test", "Ana Analyst", Role.ANALYST)]  # fmt: skip


def _user(email: str, name: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, DEMO_PASSWORD, name=name)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


class Command(BaseCommand):
    help = "Create the demo tenant 'demo' with owner, agent and analyst logins, and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="demo")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        users = [(_user(email, name), role) for email, name, role in DEMO_USERS]
        tenant = Tenant.objects.filter(slug=options["slug"]).first()
        if tenant is None:
            tenant = tenant_create(name="Driftwood Coffee Roasters", owner=users[0][0], timezone_name="America/Chicago")
            if tenant.slug != options["slug"]:
                tenant.slug = options["slug"]
                tenant.save(update_fields=["slug"])
        with tenant_context(tenant), all_tenants():
            for user, role in users:
                Membership.objects.get_or_create(user=user, defaults={"role": role})
        self.stdout.write(f"Demo business: {tenant.name} (slug {tenant.slug})")
        for email, _, role in DEMO_USERS:
            self.stdout.write(f"  {role:<8} {email} / {DEMO_PASSWORD}")
