"""Datasets and their problems. Problem text is untrusted and always escaped."""

from __future__ import annotations

from django.db import models

from webapp.teams.models import Team


class Dataset(models.Model):
    class Source(models.TextChoices):
        ARITHMETIC = "arithmetic", "Built-in arithmetic generator"
        PROMPTS = "prompts", "Typed prompts"
        UPLOAD = "upload", "Uploaded file"
        HUMANEVAL = "humaneval", "HumanEval (built in)"

    class Kind(models.TextChoices):
        MATH = "math", "Math (numeric answers)"
        EXACT = "exact", "Exact match"
        OPEN = "open", "Open-ended (no reference)"
        CODE = "code", "Code (unit tests)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=Source.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MATH)
    params = models.JSONField(default=dict, blank=True)
    # sha256 of source, kind and content: resubmitting the same data reuses the
    # same problems, and therefore the same sample pools.
    content_key = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "content_key"], name="one_dataset_per_content")
        ]

    def __str__(self) -> str:
        return self.name


class Problem(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="problems")
    index = models.PositiveIntegerField()
    prompt = models.TextField()
    answer = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="one_problem_per_index")
        ]

    def __str__(self) -> str:
        return f"{self.dataset} #{self.index}"

    @property
    def has_reference(self) -> bool:
        return self.answer != ""
