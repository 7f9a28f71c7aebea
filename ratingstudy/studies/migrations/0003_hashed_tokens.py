import hashlib

import django.utils.timezone
from django.db import migrations, models


def hash_tokens(apps, schema_editor):
    """Keep every existing link working: store the sha256 of its token, then drop the token."""
    Rater = apps.get_model("studies", "Rater")
    for rater in Rater.objects.all():
        rater.token_hash = hashlib.sha256(rater.token.encode()).hexdigest()
        rater.save(update_fields=["token_hash"])


class Migration(migrations.Migration):

    dependencies = [
        ('studies', '0002_instrument'),
    ]

    operations = [
        migrations.AddField(
            model_name='rater',
            name='token_hash',
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name='rater',
            name='token_issued_at',
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.RunPython(hash_tokens, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='rater',
            name='token',
        ),
        migrations.AlterField(
            model_name='rater',
            name='token_hash',
            field=models.CharField(editable=False, help_text='sha256 of the invitation token; the token itself is never stored.', max_length=64, unique=True),
        ),
    ]
