"""The index of the customers page's default order: (tenant, last seen newest first with never-seen customers
last, id). Written per database: SQLite cannot say NULLS LAST in an index, but it sorts NULLs last in a
descending order anyway."""

from typing import Any

from django.db import migrations

NAME = "customer_tenant_last_seen_idx"


def create(apps: Any, schema_editor: Any) -> None:
    nulls = " NULLS LAST" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f'CREATE INDEX "{NAME}" ON "journeys_customer" ("tenant_id", "last_seen" DESC{nulls}, "id" DESC)'
    )


def drop(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME}"')


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0002_lean_tenant_indexes"),
        ("tenants", "0003_widget_key"),
    ]

    operations = [migrations.RunPython(create, drop)]
