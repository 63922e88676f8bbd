from __future__ import annotations

from django.contrib import admin

from webapp.experiments.models import Experiment, Sample, SamplePool, Strategy


class StrategyInline(admin.TabularInline):
    model = Strategy
    extra = 0


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "model_name", "status", "created"]
    list_filter = ["status"]
    inlines = [StrategyInline]


@admin.register(SamplePool)
class SamplePoolAdmin(admin.ModelAdmin):
    list_display = ["key", "model_name", "prompt_scheme", "seed", "created"]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["pool", "problem", "index", "generated_tokens", "finish_reason"]
