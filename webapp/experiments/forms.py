"""Forms turn browser input into domain objects (specs and configs)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django import forms
from django.conf import settings

from strategies import registry
from strategies.prompting.entries import get_scheme, scheme_names
from strategies.recipe import (
    ADAPTIVE_DECODER,
    BEAM_DECODERS,
    BEAM_FIXED_FIELDS,
    SAMPLE_DECODER,
    SINGLE_CALL_SCHEMES,
)
from strategies.sampling import DecodingConfig
from webapp.datasets.code import HUMANEVAL_SIZE, CodeParseError, parse_code_jsonl
from webapp.datasets.models import Dataset
from webapp.datasets.services import PromptParseError, parse_prompt_lines
from webapp.experiments.config_forms import build_config, config_fields
from webapp.experiments.services import MAX_SAMPLES, TOO_MANY_SAMPLES, model_choices
from webapp.experiments.specs import CODE_SELECTORS, StrategySpec
from webapp.experiments.subsets import choose_problems, parse_ids, subset_spec
from webapp.experiments.verification import CODE_VERIFIERS, MODEL_VERIFIERS, TEXT_VERIFIERS
from webapp.teams.models import Team

ROW_ID = re.compile(r"^[a-z0-9]{1,16}$")
MAX_STRATEGIES = 12
FORM_VERIFIERS = TEXT_VERIFIERS + MODEL_VERIFIERS + CODE_VERIFIERS
# Dataset sources whose problems are code, judged by running their unit tests.
CODE_SOURCES = ("humaneval", "code_upload")
MAX_UPLOAD_BYTES = 20 << 20
# The verifier a saved dataset's kind implies (the form's default for it).
KIND_VERIFIERS = {"math": "math", "exact": "exact", "regex": "regex", "choice": "choice"}


def n_samples_field(**kwargs: Any) -> forms.IntegerField:
    """N, from 1 to ``MAX_SAMPLES``; above it the message names the bound."""
    return forms.IntegerField(
        label="Samples per problem (N)", min_value=1, max_value=MAX_SAMPLES,
        error_messages={"max_value": TOO_MANY_SAMPLES}, **kwargs,
    )


class ExperimentForm(forms.Form):
    DATASET_CHOICES = [
        ("arithmetic", "Built-in arithmetic problems"),
        ("prompts", "Prompts typed below"),
        ("humaneval", "HumanEval: Python functions judged by unit tests"),
        ("code_upload", "Code problems from a JSONL file (HumanEval fields)"),
        ("saved", "A dataset of the team (uploaded on the Datasets page)"),
    ]
    # The fields each dataset source reads; the page shows only the chosen source's.
    SOURCE_FIELDS = {
        "arithmetic": ("arithmetic_size", "arithmetic_seed", "arithmetic_difficulty"),
        "prompts": ("prompts",),
        "humaneval": ("humaneval_size",),
        "code_upload": ("code_file",),
        "saved": ("dataset", "subset_mode", "subset_k", "subset_seed", "subset_ids"),
    }

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
    humaneval_size = forms.IntegerField(
        label="HumanEval problems", min_value=1, max_value=HUMANEVAL_SIZE, initial=20,
        required=False, help_text=f"The first problems of the {HUMANEVAL_SIZE}, in task order.",
    )
    code_file = forms.FileField(
        label="Code problems (JSONL)", required=False,
        help_text="One JSON object per line with prompt, test (defining check(candidate)) "
        "and entry_point; canonical_solution and task_id are optional.",
    )
    dataset = forms.ModelChoiceField(
        label="Saved dataset", queryset=Dataset.objects.none(), required=False,
        help_text="Any dataset of the chosen team; its kind sets the verifier.",
    )
    subset_mode = forms.ChoiceField(
        label="Problems", required=False, initial="all",
        choices=[("all", "All"), ("first", "The first k"), ("random", "A seeded random k"),
                 ("ids", "Listed ids")],
    )
    subset_k = forms.IntegerField(label="k", min_value=1, required=False)
    subset_seed = forms.IntegerField(label="Subset seed", min_value=0, initial=0, required=False)
    subset_ids = forms.CharField(
        label="Problem ids", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The dataset's ids (or row numbers from 0), separated by commas, spaces "
        "or lines.",
    )
    n_samples = n_samples_field(initial=8)
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
        dataset_field = self.fields["dataset"]
        assert isinstance(dataset_field, forms.ModelChoiceField)
        dataset_field.queryset = Dataset.objects.filter(
            team__in=[t.pk for t in teams]
        ).order_by("name", "-created")
        model_field = self.fields["model_name"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = model_choices()
        model_field.initial = settings.STRATLAB_DEFAULT_MODEL
        verifier_field = self.fields["verifier"]
        assert isinstance(verifier_field, forms.ChoiceField)
        verifier_field.choices = [
            (name, f"{name}: {registry.get(name).description}") for name in FORM_VERIFIERS
        ]
        self.verifier_name = self._chosen_verifier()
        self.verifier_fields = []
        fields = config_fields(registry.get(self.verifier_name).config_class)
        if self.verifier_name == "judge":
            # The judge's reply length is its own, not the experiment's max new tokens.
            fields["max_new_tokens"] = forms.IntegerField(
                label="Judge max new tokens", min_value=1, max_value=4096, initial=256,
                required=False,
            )
        for name, field in fields.items():
            self.fields[f"verifier__{name}"] = field
            self.verifier_fields.append(f"verifier__{name}")

    def _given(self, name: str) -> Any:
        """A field's submitted value, or its initial one on an unbound form (a form
        prefilled from an experiment, ``lifecycle.rerun_initial``)."""
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        return self.initial.get(name)

    def _saved_kind(self) -> str | None:
        """The kind of the saved dataset the data names, if it is one of the user's."""
        if self._given("dataset_source") != "saved":
            return None
        field = self.fields["dataset"]
        assert isinstance(field, forms.ModelChoiceField)
        try:
            pk = int(self._given("dataset") or "")
            return str(field.queryset.get(pk=pk).kind)
        except (ValueError, Dataset.DoesNotExist):
            return None

    def _chosen_verifier(self) -> str:
        kind = self._saved_kind()
        if kind == Dataset.Kind.CODE or self._given("dataset_source") in CODE_SOURCES:
            return "unit_tests"  # code is judged by its tests, whatever else was picked
        value = self._given("verifier")
        if kind in KIND_VERIFIERS and value in (None, "", "math"):
            return KIND_VERIFIERS[kind]  # the dataset's kind sets the default
        return str(value) if value in FORM_VERIFIERS else "math"

    @property
    def is_code(self) -> bool:
        if self.cleaned_data.get("dataset_source") == "saved":
            dataset = self.cleaned_data.get("dataset")
            return dataset is not None and dataset.kind == Dataset.Kind.CODE
        return self.cleaned_data.get("dataset_source") in CODE_SOURCES

    def _clean_saved(self, data: dict[str, Any]) -> None:
        dataset = data.get("dataset")
        if dataset is None:
            if not self.has_error("dataset"):
                self.add_error("dataset", "Choose one of the team's datasets.")
            return
        team = data.get("team")
        if team is not None and dataset.team_id != team.pk:
            self.add_error("dataset", f"{dataset.name} belongs to another team than {team}.")
            return
        ids = parse_ids(data.get("subset_ids") or "")
        try:
            data["subset"] = subset_spec(
                data.get("subset_mode") or "all", k=data.get("subset_k"),
                seed=data.get("subset_seed"), ids=ids,
            )
            if data["subset"]:
                choose_problems(dataset, data["subset"])
        except ValueError as exc:
            field = {"first": "subset_k", "random": "subset_k", "ids": "subset_ids"}.get(
                data.get("subset_mode") or "", "subset_mode")
            self.add_error(field, str(exc))

    def source_of(self, name: str) -> str:
        """The dataset source a field belongs to ("" for every source)."""
        return next((source for source, names in self.SOURCE_FIELDS.items()
                     if name in names), "")

    def dataset_fit_errors(self, specs: list[StrategySpec]) -> list[str]:
        """Strategies that need a code dataset when the chosen one is not."""
        if self.is_code:
            return []
        return [f"Strategy {i}: {spec.selector} ranks programs by generated tests; choose "
                "HumanEval or uploaded code problems as the dataset."
                for i, spec in enumerate(specs, start=1) if spec.selector in CODE_SELECTORS]

    def _clean_code_file(self, data: dict[str, Any]) -> None:
        upload = data.get("code_file")
        if upload is None:
            self.add_error("code_file", "Choose a JSONL file of code problems.")
            return
        name = str(getattr(upload, "name", "upload"))[:100]
        if upload.size > MAX_UPLOAD_BYTES:
            self.add_error("code_file", f"{name} is {upload.size >> 20} MiB; the limit is "
                           f"{MAX_UPLOAD_BYTES >> 20} MiB.")
            return
        raw = upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.add_error("code_file", f"{name} line {line}: not UTF-8 text.")
            return
        try:
            data["code_rows"] = parse_code_jsonl(text, name)
        except CodeParseError as exc:
            for message in exc.errors:
                self.add_error("code_file", message)
        data["code_filename"] = name

    def verifier_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.verifier_fields]

    def main_fields(self) -> list[forms.BoundField]:
        """The form's fields above verification, each tagged with its dataset source
        (``source``) so the page shows only the chosen source's fields."""
        bound = []
        for name in self.fields:
            if name.startswith("verifier") or name == "self_eval":
                continue
            field = self[name]
            field.source = self.source_of(name)  # type: ignore[attr-defined]
            bound.append(field)
        return bound

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
        elif data.get("dataset_source") == "humaneval":
            if data.get("humaneval_size") is None:
                data["humaneval_size"] = HUMANEVAL_SIZE
        elif data.get("dataset_source") == "code_upload":
            self._clean_code_file(data)
        elif data.get("dataset_source") == "saved":
            self._clean_saved(data)
        if self.verifier_name == "unit_tests" and not self.is_code:
            self.add_error("verifier", "unit_tests runs a code dataset's tests; choose "
                           "HumanEval or uploaded code problems, or another verifier.")
        values = {k.split("__", 1)[1]: v for k, v in data.items() if k.startswith("verifier__")}
        config, errors = build_config(registry.get(self.verifier_name).config_class, values)
        for name, message in errors.items():
            key = f"verifier__{name}"
            self.add_error(key if key in self.fields else None, message)
        if config is not None:
            data["verifier_config"] = _jsonable(_non_default(config))
        return data


# The schemes a row may pick (CodeT's test prompt is made for CodeT and B4 only).
SELECTABLE_SCHEMES = scheme_names(selectable=True)
DECODER_CHOICES = [
    (SAMPLE_DECODER, "sample: draw N samples with the settings of this row"),
    *((name, f"{name.replace('_', ' ')}: {registry.get(name).description}")
      for name in BEAM_DECODERS),
    (ADAPTIVE_DECODER, "adaptive consistency: sample in rounds of 1, 1, 2, 4, ... and stop "
     "once the Beta rule says the vote is decided (at most N)"),
]
BASIC_SAMPLING = ("temperature", "top_p", "top_k")
EARLY_STOPPING = [
    ("false", "False (heuristic)"),
    ("true", "True (once num_beams are finished)"),
    ("never", "never (canonical)"),
]


def _choices(kind: str, names: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    picked = names or tuple(registry.names(kind))
    return [(name, f"{name.replace('_', ' ')}: {registry.get(name).description}")
            for name in picked]


class AmendForm(forms.Form):
    """A finished experiment's larger N; the strategies to add come as ``StrategyForm``
    rows beside it (``lifecycle.amend_experiment`` checks the rest)."""

    n_samples = n_samples_field(
        help_text="Grow the pools: only the samples they lack are generated.")

    def __init__(self, *args: Any, current_n: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_n = current_n
        self.fields["n_samples"].initial = current_n

    def clean_n_samples(self) -> int:
        value = int(self.cleaned_data["n_samples"])
        if value < self.current_n:
            raise forms.ValidationError(
                f"N can only grow: the experiment has N = {self.current_n}.")
        return value


class StrategyForm(forms.Form):
    """One strategy row: prompting scheme, decoder, decoding settings, selector, configs.

    The decoding fields come from ``DecodingConfig``, the scheme's, beam decoder's and
    selector's from their registered config classes; building each config is the
    validation. ``n_samples`` is the experiment's N when known: a beam decoder must
    return N beams.
    """

    prompt_scheme = forms.ChoiceField(label="Prompting", initial="direct", required=False)
    decoder = forms.ChoiceField(label="Decoding", initial=SAMPLE_DECODER, required=False)
    selector = forms.ChoiceField(initial="majority")

    def __init__(self, *args: Any, n_samples: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_samples = n_samples
        self.fields["prompt_scheme"].choices = _choices("prompting", SELECTABLE_SCHEMES)
        self.fields["decoder"].choices = DECODER_CHOICES
        self.fields["selector"].choices = [
            (name, label + (" (code datasets)" if name in CODE_SELECTORS else ""))
            for name, label in _choices("selector")
        ]
        self.fields.update(config_fields(DecodingConfig))
        self.fields["temperature"].initial = 0.7
        self.scheme_name = self._chosen("prompt_scheme")
        self.selector_name = self._chosen("selector")
        self.decoder_name = self._chosen("decoder")
        self.scheme = get_scheme(self.scheme_name)
        self.scheme_fields = self._add_config("scheme", "prompting", self.scheme_name)
        for extra in self.scheme.extras:
            # A setting kept beside the scheme's config (sequential's token budget).
            self.fields[f"scheme__{extra.name}"] = forms.IntegerField(
                label=extra.label, min_value=extra.minimum, required=False,
                help_text=extra.help_text,
            )
            self.scheme_fields.append(f"scheme__{extra.name}")
        self.decoder_fields: list[str] = []
        if self.decoder_name == ADAPTIVE_DECODER:
            self.decoder_fields = self._add_config("adapt", "selector", ADAPTIVE_DECODER)
        elif self.decoder_name != SAMPLE_DECODER:
            self.decoder_fields = self._add_config("beam", "sampler", self.decoder_name)
            for name in BEAM_FIXED_FIELDS:
                self.fields.pop(f"beam__{name}", None)
                if f"beam__{name}" in self.decoder_fields:
                    self.decoder_fields.remove(f"beam__{name}")
            # ``bool | Literal["never"]`` has no generated field: offer its three values.
            self.fields["beam__early_stopping"] = forms.TypedChoiceField(
                label="Early stopping", choices=EARLY_STOPPING, initial="false",
                coerce=lambda value: {"false": False, "true": True}.get(value, value),
                required=False, empty_value=None,
            )
            self.decoder_fields.append("beam__early_stopping")
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

    def decoder_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.decoder_fields]

    def selector_config_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.selector_fields]

    def _config(self, prefix: str, kind_name: str, data: dict[str, Any],
                fixed: dict[str, Any] | None = None) -> Any:
        values = {k.split("__", 1)[1]: v for k, v in data.items() if k.startswith(prefix + "__")}
        if prefix == "scheme":
            for extra in self.scheme.extras:  # kept beside the config, not a field of it
                values.pop(extra.name, None)
        entry = registry.get(kind_name)
        config, errors = build_config(entry.config_class, values, fixed)
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
        decoder_config = self._clean_decoder(data)
        beam_config = decoder_config if self.decoder_name in BEAM_DECODERS else None
        if self.errors or decoding is None:
            return data
        defaults = DecodingConfig()
        sampling = {
            name: getattr(decoding, name)
            for name in config_fields(DecodingConfig)
            if name not in BASIC_SAMPLING and getattr(decoding, name) != getattr(defaults, name)
        }
        prompt_config = _jsonable(_non_default(scheme_config))
        for extra in self.scheme.extras:
            if data.get(f"scheme__{extra.name}"):
                prompt_config[extra.name] = data[f"scheme__{extra.name}"]
        selector_config = _jsonable(_non_default(selector_config))
        if beam_config is not None:
            # Beam search is deterministic: the row's sampling settings do not apply.
            decoder_config = {k: v for k, v in _jsonable(_non_default(beam_config)).items()
                              if k not in BEAM_FIXED_FIELDS}
            data["spec"] = StrategySpec(
                temperature=1.0, selector=self.selector_name, prompt_scheme=self.scheme_name,
                selector_config=selector_config, prompt_config=prompt_config,
                decoder=self.decoder_name, decoder_config=decoder_config,
            )
            self._check_whole_pool(data["spec"])
            return data
        data["spec"] = StrategySpec(
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            top_k=decoding.top_k,
            selector=self.selector_name,
            prompt_scheme=self.scheme_name,
            sampling=_jsonable(sampling),
            selector_config=selector_config,
            prompt_config=prompt_config,
            decoder=SAMPLE_DECODER if decoder_config is None else self.decoder_name,
            decoder_config={} if decoder_config is None else _non_default(decoder_config),
        )
        self._check_whole_pool(data["spec"])
        return data

    def _check_whole_pool(self, spec: StrategySpec) -> None:
        """A pool drawn whole in one task (multi-call schemes, beam and adaptive decoders)
        takes an N that one task finishes."""
        message = spec.whole_pool_error(self.n_samples) if self.n_samples else None
        if message:
            field = "prompt_scheme" if self.decoder_name == SAMPLE_DECODER else "decoder"
            self.add_error(field, message[0].upper() + message[1:] + ".")

    def _clean_decoder(self, data: dict[str, Any]) -> Any:
        """The beam decoder's config (None to sample), its errors added to the form."""
        if self.decoder_name == SAMPLE_DECODER:
            return None
        if self.decoder_name == ADAPTIVE_DECODER:
            config = self._config("adapt", ADAPTIVE_DECODER, data)[0]
            if not self.scheme.single_call:
                self.add_error("decoder", "Adaptive stopping samples one prompt in rounds: "
                               "choose a single-call prompting scheme "
                               f"({', '.join(SINGLE_CALL_SCHEMES)}), not {self.scheme_name}.")
            if data.get("temperature") == 0 and not data.get("temperature_mix"):
                self.add_error("decoder", "Adaptive stopping needs sampling (temperature > 0).")
            return config
        # N and the token cap are the experiment's; 1 stands in while validating here.
        config = self._config("beam", self.decoder_name, data,
                              dict.fromkeys(BEAM_FIXED_FIELDS, 1))[0]
        if not self.scheme.single_call:
            self.add_error("decoder", f"{self.decoder_name} decodes one prompt: choose a "
                           f"single-call prompting scheme ({', '.join(SINGLE_CALL_SCHEMES)}), "
                           f"not {self.scheme_name}.")
        if config is not None and self.n_samples and config.num_beams < self.n_samples:
            self.add_error("beam__num_beams", f"Num beams must be at least N = "
                           f"{self.n_samples}: a beam pool of N candidates returns the N "
                           "best beams.")
        return config


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


def _n_samples(data: Any | None) -> int | None:
    """The experiment's N from the submitted data, when it is a valid number."""
    try:
        value = int((data or {}).get("n_samples", ""))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= MAX_SAMPLES else None


def strategy_forms(data: Any | None, row_ids: list[str]) -> list[tuple[str, StrategyForm]]:
    """One bound (or unbound) form per row id, each with its own field prefix."""
    clean_ids = [r for r in row_ids if ROW_ID.match(r)][:MAX_STRATEGIES]
    n_samples = _n_samples(data)
    return [(row_id, StrategyForm(data, prefix=f"s-{row_id}", n_samples=n_samples))
            for row_id in clean_ids]


DEFAULT_ROWS: list[dict[str, Any]] = [
    {"temperature": 0.0, "selector": "first"},
    {"temperature": 0.7, "selector": "majority"},
]
