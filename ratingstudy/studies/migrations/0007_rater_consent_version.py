"""Rater.consent_version: the latest consent version a rater agreed to, read on every rater
request instead of a lookup in ConsentRecord (which stays the record)."""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery


def fill(apps, schema_editor):
    Rater = apps.get_model("studies", "Rater")
    ConsentRecord = apps.get_model("studies", "ConsentRecord")
    latest = ConsentRecord.objects.filter(rater=OuterRef("pk")).values("rater").annotate(v=Max("version")).values("v")
    Rater.objects.update(consent_version=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [("studies", "0006_protocols")]

    operations = [
        migrations.AddField(
            model_name="rater",
            name="consent_version",
            field=models.PositiveIntegerField(
                blank=True,
                editable=False,
                help_text="The latest consent version agreed to (its record is a ConsentRecord); read on every rater request.",
                null=True,
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
