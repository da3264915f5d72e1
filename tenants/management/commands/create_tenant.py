"""Provision a tenant with an owner; with --api-key, print a new read-write key as the last line."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants.context import tenant_context
from tenants.models import ApiKeyScope, User
from tenants.services import api_key_create, tenant_create


class Command(BaseCommand):
    help = 'Create a business and its owner: create_tenant "Acme Bakery" --owner owner@acme.test [--api-key]'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The business name")
        parser.add_argument("--owner", required=True, help="Owner's email; the account is created if new")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--api-key", action="store_true", help="Also issue a read-write API key (printed last)")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["owner"].strip().lower()
        try:
            with transaction.atomic():
                owner = User.objects.filter(email__iexact=email).first()
                created = owner is None
                if owner is None:
                    owner = User.objects.create_user(email, None)  # no password: the owner sets one by reset
                    EmailAddress.objects.create(user=owner, email=email, verified=True, primary=True)
                tenant = tenant_create(
                    name=options["name"], owner=owner, timezone_name=options["timezone"], currency=options["currency"]
                )
                issued = None
                if options["api_key"]:
                    with tenant_context(tenant):
                        issued = api_key_create(name="create_tenant", scope=ApiKeyScope.WRITE, created_by=owner)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Created tenant {tenant.name} (slug {tenant.slug}, id {tenant.pk}).")
        if created:
            self.stdout.write(f"Created owner {email}; they set a password at /accounts/password/reset/.")
        else:
            self.stdout.write(f"{email} owns it.")
        if issued is not None:
            self.stdout.write(issued.secret)
