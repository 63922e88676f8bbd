"""Comments belong to the team (shown on every experiment of the team that reads their
problem or candidate), keeping the experiment they were written from; a label may say
"the answer is X" as its own kind."""

import django.db.models.deletion
from django.db import migrations, models


def team_from_experiment(apps, schema_editor):  # type: ignore[no-untyped-def]
    Comment = apps.get_model("review", "Comment")
    Experiment = apps.get_model("experiments", "Experiment")
    teams = dict(Experiment.objects.filter(
        pk__in=Comment.objects.values("experiment_id")).values_list("pk", "team_id"))
    for comment in Comment.objects.filter(team__isnull=True).only("pk", "experiment_id"):
        Comment.objects.filter(pk=comment.pk).update(team_id=teams[comment.experiment_id])


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0007_review_figures"),
        ("review", "0001_initial"),
        ("teams", "0002_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="team",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="comments", to="teams.team"),
        ),
        migrations.RunPython(team_from_experiment, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="comment",
            name="team",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                    related_name="comments", to="teams.team"),
        ),
        migrations.AlterField(
            model_name="comment",
            name="experiment",
            field=models.ForeignKey(blank=True, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="comments", to="experiments.experiment"),
        ),
        migrations.RemoveIndex(
            model_name="comment",
            name="review_comm_experim_30308b_idx",
        ),
        migrations.AddIndex(
            model_name="comment",
            index=models.Index(fields=["team", "problem"], name="review_comm_team_id_253068_idx"),
        ),
        migrations.AlterField(
            model_name="humanlabel",
            name="outcome",
            field=models.CharField(choices=[("pass", "Pass"), ("fail", "Fail"),
                                            ("answer", "Answer is")], max_length=10),
        ),
    ]
