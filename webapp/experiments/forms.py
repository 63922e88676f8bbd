"""Forms turn browser input into domain objects (specs and configs)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django import forms
from django.conf import settings

from strategies import registry
from strategies.sampling import DecodingConfig
from webapp.datasets.services import PromptParseError, parse_prompt_lines
from webapp.experiments.config_forms import build_config, config_fields
from webapp.experiments.services import MAX_SAMPLES, StrategySpec, model_choices
from webapp.experiments.verification import TEXT_VERIFIERS
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
    verifier = forms.ChoiceField(initial="math", required=False)
    self_eval = forms.BooleanField(
        label="Score samples by self-evaluation",
        required=False,
        help_text="The model's P(No) to 'would you do better if you started over?', "
        "used by best-of-N, best-of-majority and score-weighted voting.",
    )

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
        verifier_field = self.fields["verifier"]
        assert isinstance(verifier_field, forms.ChoiceField)
        verifier_field.choices = [
            (name, f"{name}: {registry.get(name).description}") for name in TEXT_VERIFIERS
        ]
        self.verifier_name = self._chosen_verifier()
        self.verifier_fields = []
        for name, field in config_fields(registry.get(self.verifier_name).config_class).items():
            self.fields[f"verifier__{name}"] = field
            self.verifier_fields.append(f"verifier__{name}")

    def _chosen_verifier(self) -> str:
        value = self.data.get(self.add_prefix("verifier")) if self.is_bound else None
        return str(value) if value in TEXT_VERIFIERS else "math"

    def verifier_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.verifier_fields]

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields
                if not name.startswith("verifier") and name != "self_eval"]

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
        values = {k.split("__", 1)[1]: v for k, v in data.items() if k.startswith("verifier__")}
        config, errors = build_config(registry.get(self.verifier_name).config_class, values)
        for name, message in errors.items():
            key = f"verifier__{name}"
            self.add_error(key if key in self.fields else None, message)
        if config is not None:
            data["verifier_config"] = _jsonable(_non_default(config))
        return data


SELECTABLE_SCHEMES = ("direct", "chain_of_thought", "few_shot", "verbalized", "deepening",
                      "refine")
# CodeT and B4 rank code by a pass matrix of generated tests: offered for code datasets.
CODE_SELECTORS = ("codet", "b4")
BASIC_SAMPLING = ("temperature", "top_p", "top_k")


def _choices(kind: str, names: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    picked = names or tuple(registry.names(kind))
    return [(name, f"{name.replace('_', ' ')}: {registry.get(name).description}")
            for name in picked]


class StrategyForm(forms.Form):
    """One strategy row: prompting scheme, decoding settings, selector, and their configs.

    The decoding fields come from ``DecodingConfig``, the scheme's and selector's from
    their registered config classes; building each config is the validation.
    """

    prompt_scheme = forms.ChoiceField(label="Prompting", initial="direct", required=False)
    selector = forms.ChoiceField(initial="majority")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt_scheme"].choices = _choices("prompting", SELECTABLE_SCHEMES)
        self.fields["selector"].choices = [
            c for c in _choices("selector") if c[0] not in CODE_SELECTORS
        ]
        self.fields.update(config_fields(DecodingConfig))
        self.fields["temperature"].initial = 0.7
        self.scheme_name = self._chosen("prompt_scheme")
        self.selector_name = self._chosen("selector")
        self.scheme_fields = self._add_config("scheme", "prompting", self.scheme_name)
        self.selector_fields = self._add_config("sel", "selector", self.selector_name)

    def _chosen(self, name: str) -> str:
        field = self.fields[name]
        valid = {value for value, _ in field.choices}  # type: ignore[attr-defined]
        value = self.data.get(self.add_prefix(name)) if self.is_bound else None
        if value in valid:
            return str(value)
        initial = self.initial.get(name, field.initial)
        return str(initial) if initial in valid else next(iter(valid))

    def _add_config(self, group: str, kind: str, name: str) -> list[str]:
        added = []
        for field_name, field in config_fields(registry.get(name).config_class).items():
            key = f"{group}__{field_name}"
            self.fields[key] = field
            added.append(key)
        return added

    def basic_sampling(self) -> list[forms.BoundField]:
        return [self[name] for name in BASIC_SAMPLING]

    def advanced_sampling(self) -> list[forms.BoundField]:
        names = config_fields(DecodingConfig)
        return [self[name] for name in names if name not in BASIC_SAMPLING]

    def scheme_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.scheme_fields]

    def selector_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.selector_fields]

    def _config(self, prefix: str, kind_name: str, data: dict[str, Any]) -> Any:
        values = {k.split("__", 1)[1]: v for k, v in data.items() if k.startswith(prefix + "__")}
        entry = registry.get(kind_name)
        config, errors = build_config(entry.config_class, values)
        for field_name, message in errors.items():
            key = f"{prefix}__{field_name}"
            self.add_error(key if key in self.fields else None, message)
        return config, values

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        decoding_values = {name: data.get(name) for name in config_fields(DecodingConfig)}
        # max_new_tokens belongs to the experiment; 1 stands in while validating here.
        decoding, errors = build_config(DecodingConfig, decoding_values, {"max_new_tokens": 1})
        for field_name, message in errors.items():
            self.add_error(field_name if field_name in self.fields else None, message)
        scheme_config, _ = self._config("scheme", self.scheme_name, data)
        selector_config, _ = self._config("sel", self.selector_name, data)
        if self.errors or decoding is None:
            return data
        defaults = DecodingConfig()
        sampling = {
            name: getattr(decoding, name)
            for name in config_fields(DecodingConfig)
            if name not in BASIC_SAMPLING and getattr(decoding, name) != getattr(defaults, name)
        }
        data["spec"] = StrategySpec(
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            top_k=decoding.top_k,
            selector=self.selector_name,
            prompt_scheme=self.scheme_name,
            sampling=_jsonable(sampling),
            selector_config=_jsonable(_non_default(selector_config)),
            prompt_config=_jsonable(_non_default(scheme_config)),
        )
        return data


def _non_default(config: Any) -> dict[str, Any]:
    """The config's fields that differ from the class defaults (what identifies it)."""
    defaults = type(config)()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def strategy_forms(data: Any | None, row_ids: list[str]) -> list[tuple[str, StrategyForm]]:
    """One bound (or unbound) form per row id, each with its own field prefix."""
    clean_ids = [r for r in row_ids if ROW_ID.match(r)][:MAX_STRATEGIES]
    return [(row_id, StrategyForm(data, prefix=f"s-{row_id}")) for row_id in clean_ids]


DEFAULT_ROWS: list[dict[str, Any]] = [
    {"temperature": 0.0, "selector": "first"},
    {"temperature": 0.7, "selector": "majority"},
]
