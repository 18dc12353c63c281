"""Activations not yet folded into the dashboard's rollup (keys/rollup.py): an activation
inserts one row here instead of updating its batch's counts and its hour, rows every activation
of a partner shared (issue 9). Adds a table; nothing to fill: activations until now are counted.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_tenant_time_zone'),
        ('keys', '0005_sliding_failure_windows'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingActivation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('batch', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='keys.keybatch')),
                ('partner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.partner')),
            ],
            options={
                'indexes': [models.Index(fields=['partner', 'hour'], name='pending_activation_partner')],
            },
        ),
    ]
