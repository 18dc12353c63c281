"""The partner dashboard's rollup (issue 9): per-batch counts and activations per partner and UTC
hour, kept by keys/rollup.py in the transactions that change keys, filled here from the keys
already stored (one INSERT … SELECT per table, whatever their number).
"""

import django.db.models.deletion
from django.db import migrations, models


def fill_from_keys(apps, schema_editor):
    from fiscobridge.keys.rollup import recount

    recount(
        key_model=apps.get_model("keys", "ActivationKey"),
        counts_model=apps.get_model("keys", "KeyBatchCounts"),
        hour_model=apps.get_model("keys", "ActivationHour"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('keys', '0003_failure_counters'),
    ]

    operations = [
        migrations.CreateModel(
            name='KeyBatchCounts',
            fields=[
                ('batch', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='counts', serialize=False, to='keys.keybatch')),
                ('available_keys', models.IntegerField(default=0)),
                ('activated_keys', models.IntegerField(default=0)),
                ('revoked_keys', models.IntegerField(default=0)),
                ('voided_keys', models.IntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='ActivationHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('activations', models.IntegerField(default=0)),
                ('partner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.partner')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('partner', 'hour'), name='activation_hour_partner_hour')],
            },
        ),
        migrations.RunPython(fill_from_keys, migrations.RunPython.noop, elidable=False),
    ]
