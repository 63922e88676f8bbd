from __future__ import annotations

from django.contrib import admin

from webapp.datasets.models import Dataset, DatasetUpload, Problem


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "team", "source", "kind", "row_count", "created"]


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["dataset", "index", "answer"]


@admin.register(DatasetUpload)
class DatasetUploadAdmin(admin.ModelAdmin):
    list_display = ["file_name", "team", "format", "size", "created"]
