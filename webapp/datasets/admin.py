from __future__ import annotations

from django.contrib import admin

from webapp.datasets.models import Dataset, Problem


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "source", "kind", "created"]


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["dataset", "index", "answer"]
