# Uploaded datasets: versions, the column mapping, file facts, row counts, and staged
# uploads. Existing rows get their row counts, and datasets that already share a name
# (per team and source) are numbered as versions in creation order before the
# one-version-per-name constraint is added.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def number_versions_and_count_rows(apps, schema_editor):
    Dataset = apps.get_model("datasets", "Dataset")
    seen = {}
    for dataset in Dataset.objects.annotate(rows=models.Count("problems")).order_by("created", "pk"):
        key = (dataset.team_id, dataset.source, dataset.name)
        seen[key] = seen.get(key, 0) + 1
        dataset.version = seen[key]
        dataset.row_count = dataset.rows
        dataset.save(update_fields=["version", "row_count"])


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0002_code_datasets'),
        ('teams', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='description',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='dataset',
            name='file_name',
            field=models.CharField(blank=True, default='', max_length=255),
        ),
        migrations.AddField(
            model_name='dataset',
            name='format',
            field=models.CharField(blank=True, default='', max_length=10),
        ),
        migrations.AddField(
            model_name='dataset',
            name='mapping',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='dataset',
            name='row_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='dataset',
            name='version',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name='dataset',
            name='kind',
            field=models.CharField(choices=[('math', 'Math (numeric answers)'), ('exact', 'Exact match'), ('regex', 'Regex match'), ('choice', 'Multiple choice'), ('open', 'Open-ended (no reference)'), ('code', 'Code (unit tests)')], default='math', max_length=20),
        ),
        migrations.RunPython(number_versions_and_count_rows, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='dataset',
            constraint=models.UniqueConstraint(fields=('team', 'source', 'name', 'version'), name='one_dataset_per_version'),
        ),
        migrations.CreateModel(
            name='DatasetUpload',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stored_name', models.CharField(max_length=64, unique=True)),
                ('file_name', models.CharField(max_length=255)),
                ('format', models.CharField(max_length=10)),
                ('size', models.PositiveBigIntegerField()),
                ('sha256', models.CharField(max_length=64)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dataset_uploads', to='teams.team')),
            ],
        ),
    ]
