"""Forms turn browser input into domain objects (specs and configs)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings

from strategies.sampling import DecodingConfig
from webapp.datasets.services import PromptParseError, parse_prompt_lines
from webapp.experiments.models import Strategy
from webapp.experiments.services import MAX_SAMPLES, StrategySpec, model_choices
from webapp.teams.models import Team

ROW_ID = re.compile(r"^[a-z0-9]{1,16}$")
MAX_STRATEGIES = 12


class ExperimentForm(forms.Form):
    DATASET_CHOICES = [
        ("arithmetic", "Built-in arithmetic problems"),
        ("prompts", "Prompts typed below"),
    ]

    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200)
    model_name = forms.ChoiceField(label="Model", choices=())
    dataset_source = forms.ChoiceField(
        label="Dataset", choices=DATASET_CHOICES, widget=forms.RadioSelect, initial="arithmetic"
    )
    arithmetic_size = forms.IntegerField(
        label="Problems", min_value=1, max_value=1000, initial=20, required=False
    )
    arithmetic_seed = forms.IntegerField(label="Dataset seed", initial=0, required=False)
    arithmetic_difficulty = forms.ChoiceField(
        label="Difficulty",
        choices=[("easy", "Easy"), ("mixed", "Mixed"), ("hard", "Hard")],
        initial="easy",
        required=False,
    )
    prompts = forms.CharField(
        label="Prompts",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One prompt per line; add the expected answer after ||| to have it judged.",
    )
    n_samples = forms.IntegerField(
        label="Samples per problem (N)", min_value=1, max_value=MAX_SAMPLES, initial=8
    )
    max_new_tokens = forms.IntegerField(
        label="Max new tokens", min_value=1, max_value=4096, initial=32
    )
    seed = forms.IntegerField(label="Sampling seed", min_value=0, max_value=2**62, initial=0)

    def __init__(self, *args: Any, teams: list[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team_field = self.fields["team"]
        assert isinstance(team_field, forms.ModelChoiceField)
        team_field.queryset = Team.objects.filter(pk__in=[t.pk for t in teams])
        if teams:
            team_field.initial = teams[0].pk
        model_field = self.fields["model_name"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = model_choices()
        model_field.initial = settings.STRATLAB_DEFAULT_MODEL

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("dataset_source") == "arithmetic":
            if data.get("arithmetic_size") is None:
                self.add_error("arithmetic_size", "Say how many problems to generate.")
            if data.get("arithmetic_seed") is None:
                data["arithmetic_seed"] = 0
            data["arithmetic_difficulty"] = data.get("arithmetic_difficulty") or "easy"
        elif data.get("dataset_source") == "prompts":
            try:
                data["prompt_rows"] = parse_prompt_lines(data.get("prompts", ""))
            except PromptParseError as exc:
                for message in exc.errors:
                    self.add_error("prompts", message)
        return data


class StrategyForm(forms.Form):
    """One strategy row; ``clean`` builds the decoding config and reports its errors."""

    temperature = forms.FloatField(min_value=0, max_value=5, initial=0.7)
    top_p = forms.FloatField(label="Top-p", initial=1.0)
    top_k = forms.IntegerField(label="Top-k", min_value=0, initial=0)
    selector = forms.ChoiceField(choices=Strategy.Selector.choices, initial="majority")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            DecodingConfig(
                temperature=data["temperature"], top_p=data["top_p"], top_k=data["top_k"]
            )
        except ValueError as exc:
            message = str(exc)
            target = next((f for f in ("top_p", "top_k", "temperature") if f in message), None)
            self.add_error(target, message)
            return data
        data["spec"] = StrategySpec(
            temperature=data["temperature"],
            top_p=data["top_p"],
            top_k=data["top_k"],
            selector=data["selector"],
        )
        return data


def strategy_forms(data: Any | None, row_ids: list[str]) -> list[tuple[str, StrategyForm]]:
    """One bound (or unbound) form per row id, each with its own field prefix."""
    clean_ids = [r for r in row_ids if ROW_ID.match(r)][:MAX_STRATEGIES]
    return [(row_id, StrategyForm(data, prefix=f"s-{row_id}")) for row_id in clean_ids]


DEFAULT_ROWS: list[dict[str, Any]] = [
    {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "selector": "first"},
    {"temperature": 0.7, "top_p": 1.0, "top_k": 0, "selector": "majority"},
]
