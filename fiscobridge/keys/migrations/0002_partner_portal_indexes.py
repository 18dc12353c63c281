"""Indexes for the Partner Portal at scale (1,000,000 keys per partner, see bench/README.md).

1. (partner, activated_at) where activated_at is set: the dashboard's activations per day.
2. PostgreSQL only: a trigram GIN index on UPPER(reference) — the expression Django's
   `icontains` compares — so that `search_keys` (last group = … OR reference ILIKE …) becomes a
   BitmapOr of this index and the last_group index instead of a walk of every key. It needs the
   pg_trgm extension (trusted since PostgreSQL 13: a database owner may create it). Without the
   privilege the migration warns and goes on: searches stay correct, only slower.
"""

import warnings

from django.db import migrations, models, transaction

TRGM_INDEX = "key_reference_upper_trgm"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("keys", "ActivationKey")._meta.db_table
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint: a refusal is not fatal
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS {TRGM_INDEX} ON "{table}" USING gin (UPPER("reference"::text) gin_trgm_ops)'
            )
    except Exception as error:  # noqa: BLE001 - e.g. InsufficientPrivilege for CREATE EXTENSION
        warnings.warn(f"keys.0002: no trigram index on key references ({type(error).__name__}: {error}); "
                      "key searches by reference will scan the partner's keys", stacklevel=1)


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("keys", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="activationkey",
            index=models.Index(condition=models.Q(("activated_at__isnull", False)), fields=["partner", "activated_at"],
                               name="key_partner_activated_at"),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
