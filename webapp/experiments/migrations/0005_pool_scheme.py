"""Pools store their registered scheme in a field of its own, so that the recipe is
read from fields; older rows get it from their pool name (``scheme[:hash][|decoder:hash]``),
once, here."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def fill_scheme(apps: Any, schema_editor: Any) -> None:
    SamplePool = apps.get_model("experiments", "SamplePool")
    for pool in SamplePool.objects.filter(scheme="").only("prompt_scheme"):
        pool.scheme = pool.prompt_scheme.split("|", 1)[0].split(":", 1)[0]
        pool.save(update_fields=["scheme"])


class Migration(migrations.Migration):
    dependencies = [("experiments", "0004_code_selection")]

    operations = [
        migrations.AddField(
            model_name="samplepool", name="scheme",
            field=models.CharField(default="", max_length=50), preserve_default=False,
        ),
        migrations.RunPython(fill_scheme, migrations.RunPython.noop),
    ]
