"""Run a tenant's training pipeline now, in this process, as a recorded job (for `make run` and operators)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from personalization.models import ModelStatus, ModelVersion
from personalization.services import PipelineBusyError, pipeline_start
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Train and score a tenant's segments and predictions now (the same job the dashboard's 'Train now' starts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--if-untrained", action="store_true", help="do nothing when a model is already active")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        with tenant_context(tenant):
            if options["if_untrained"] and ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists():
                self.stdout.write(f"{tenant.name}: models already trained; nothing to do.")
                return
            try:
                job = pipeline_start(run_now=True)  # a background thread would die with this command
            except PipelineBusyError as exc:
                raise CommandError(f"A training run is already queued or running: {exc}") from exc
            if job.status != "succeeded":
                raise CommandError(f"Training failed: {job.error or job.message}")
            active = sorted(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("kind", flat=True))
        self.stdout.write(f"{tenant.name}: trained; active models: {', '.join(active) or 'none (see the gates)'}.")
