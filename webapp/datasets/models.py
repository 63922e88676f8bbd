"""Datasets and their problems. Problem text is untrusted and always escaped."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
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
        REGEX = "regex", "Regex match"
        CHOICE = "choice", "Multiple choice"
        OPEN = "open", "Open-ended (no reference)"
        CODE = "code", "Code (unit tests)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    # Different content under a name the team already uses is the next version of it.
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True, default="")
    source = models.CharField(max_length=20, choices=Source.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MATH)
    params = models.JSONField(default=dict, blank=True)
    # An upload's column mapping (``webapp.datasets.mapping.ColumnMapping.to_dict()``),
    # and the file it came from.
    mapping = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=255, blank=True, default="")
    format = models.CharField(max_length=10, blank=True, default="")
    row_count = models.PositiveIntegerField(default=0)
    # sha256 of source, kind and content: resubmitting the same data reuses the
    # same problems, and therefore the same sample pools.
    content_key = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "content_key"], name="one_dataset_per_content"),
            models.UniqueConstraint(
                fields=["team", "source", "name", "version"], name="one_dataset_per_version"
            ),
        ]

    def __str__(self) -> str:
        return self.name if self.version == 1 else f"{self.name} (v{self.version})"


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


class DatasetUpload(models.Model):
    """A file received but not yet mapped and imported (the first of two steps).

    The file lives under ``DATA_DIR/uploads`` as ``stored_name``, a random name: the
    user's file name is kept only as text. Imports delete it; stale ones (over a day
    old) go when the next upload starts.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="dataset_uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    stored_name = models.CharField(max_length=64, unique=True)
    file_name = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file_name

    @property
    def path(self) -> Path:
        return upload_dir() / self.stored_name


def upload_dir() -> Path:
    """Where staged uploads wait for their mapping."""
    return Path(settings.DATA_DIR) / "uploads"
