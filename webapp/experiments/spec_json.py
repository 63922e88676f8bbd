"""An experiment spec as JSON (the API and ``manage.py run_experiment``), validated by
the new-experiment form itself.

``parse_spec`` turns the JSON into the form's fields, binds ``ExperimentForm`` and one
``StrategyForm`` per row, and maps every error back to where it is in the JSON, e.g.
``strategies[2].selector_config.threshold``. So a spec is checked by exactly the rules a
browser submission is (the config dataclasses, the dataset fit, the services' checks),
and only the JSON's shape is checked here: types, and keys the form does not know.

A key left out takes the value the form starts with (N = 8, the default model, ...;
a strategy row: temperature 0.7 and the majority vote). A config field set to ``null``
takes its default, as an empty form field does.

    {"name": "Greedy vs vote", "model": "smollm2-135m-instruct",
     "dataset": {"source": "arithmetic", "size": 20, "seed": 0, "difficulty": "easy"},
     "n_samples": 8, "max_new_tokens": 64, "seed": 0, "verifier": "math",
     "strategies": [{"temperature": 0, "selector": "first"},
                    {"temperature": 0.7, "selector": "majority",
                     "sampling": {"min_p": 0.05}}]}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from django import forms

from webapp.datasets.code import ensure_code_dataset, ensure_humaneval_dataset
from webapp.datasets.models import Dataset
from webapp.datasets.services import ensure_arithmetic_dataset, ensure_prompt_dataset
from webapp.experiments.config_forms import FloatTupleField
from webapp.experiments.forms import MAX_STRATEGIES, ExperimentForm, StrategyForm
from webapp.experiments.specs import ExperimentSpec, StrategySpec
from webapp.teams.models import Team

NON_FIELD = "non_field_errors"

#: Keys of the spec's top level, each with the form field it fills.
TOP_FIELDS = {"name": "name", "model": "model_name", "n_samples": "n_samples",
              "max_new_tokens": "max_new_tokens", "seed": "seed", "verifier": "verifier",
              "self_eval": "self_eval"}
#: ``team`` is the API's and the command's to resolve; the parser accepts and ignores it.
TOP_KEYS = (*TOP_FIELDS, "team", "dataset", "verifier_config", "strategies")
#: Per dataset source, the keys of ``dataset`` and the form fields they fill.
DATASET_FIELDS: dict[str, dict[str, str]] = {
    "arithmetic": {"size": "arithmetic_size", "seed": "arithmetic_seed",
                   "difficulty": "arithmetic_difficulty"},
    "prompts": {"prompts": "prompts"},
    "humaneval": {"size": "humaneval_size"},
    "saved": {"id": "dataset"},
}
SUBSET_FIELDS = {"mode": "subset_mode", "k": "subset_k", "seed": "subset_seed",
                 "ids": "subset_ids"}
#: A strategy row's plain keys (same names as the form's), and its config groups with
#: the form's field prefix for each.
ROW_FIELDS = ("prompt_scheme", "decoder", "selector", "temperature", "top_p", "top_k")
ROW_GROUPS = {"prompt_config": "scheme", "selector_config": "sel", "sampling": ""}
ROW_KEYS = (*ROW_FIELDS, "label", "decoder_config", *ROW_GROUPS)
MAX_LABEL = 200


class SpecError(ValueError):
    """The spec's errors: JSON path -> messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {path: list(messages) for path, messages in errors.items()}
        super().__init__("; ".join(f"{path or 'spec'}: {' '.join(messages)}"
                                   for path, messages in self.errors.items()))


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        messages = self.by_path.setdefault(path or NON_FIELD, [])
        if message not in messages:
            messages.append(message)

    def has(self, path: str) -> bool:
        return path in self.by_path


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# --- JSON values to form values -------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _form_value(field: forms.Field, value: Any) -> tuple[Any, str]:
    """The value as the form field takes it, or ("", a message) when the JSON type is
    wrong for it. ``None`` stands for an empty field (its default)."""
    if value is None:
        return "", ""
    if isinstance(field, forms.BooleanField):
        return (value, "") if isinstance(value, bool) else ("", "Expected true or false.")
    if isinstance(field, forms.FloatField):  # before IntegerField, its base class
        return (value, "") if _is_number(value) else ("", "Expected a number.")
    if isinstance(field, forms.IntegerField | forms.ModelChoiceField):
        if isinstance(value, int) and not isinstance(value, bool):
            return value, ""
        return "", "Expected an integer."
    if isinstance(field, FloatTupleField):
        if isinstance(value, list) and all(_is_number(v) for v in value):
            return ", ".join(repr(float(v)) for v in value), ""
        return "", "Expected a list of numbers."
    if isinstance(value, bool) and isinstance(field, forms.TypedChoiceField) and any(
        key == "false" for key, _ in field.choices  # type: ignore[attr-defined]
    ):
        return ("true" if value else "false"), ""  # beam early stopping: false, true, "never"
    if isinstance(value, str):
        return value, ""
    return "", "Expected a string."


def _text_lines(value: Any) -> tuple[str, str]:
    """A text area's value from a string or a list of strings (one line each)."""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return "\n".join(str(v) for v in value), ""
    return "", "Expected a string or a list of strings."


class _Binding:
    """Form data built from the JSON, with the JSON path of every form field."""

    def __init__(self, errors: _Errors) -> None:
        self.data: dict[str, Any] = {}
        self.paths: dict[str, str] = {}
        self.errors = errors

    def put(self, form_key: str, path: str, value: Any, field: forms.Field | None) -> None:
        self.paths[form_key] = path
        if field is None:
            return
        if form_key.endswith(("prompts", "subset_ids")):
            converted, problem = _text_lines(value)
        else:
            converted, problem = _form_value(field, value)
        if problem:
            self.errors.add(path, problem)
        elif converted != "":
            self.data[form_key] = converted


def _object(value: Any, path: str, errors: _Errors) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(path, "Expected an object.")
        return {}
    return value


def _unknown(values: Mapping[str, Any], known: Any, path: str, errors: _Errors,
             what: str) -> None:
    valid = list(known)
    for key in values:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            errors.add(_join(path, str(key)), f"Unknown field; {what} takes: {listed}.")


def _fill_initial(form: forms.Form, data: dict[str, Any], prefix: str = "") -> None:
    """Fields the JSON left out take the form's starting value (a checkbox left out of
    a browser form is False, so a boolean left out of the JSON must get its default)."""
    for name, field in form.fields.items():
        key = f"{prefix}{name}"
        if key in data or name == "team":
            continue
        initial = form.initial.get(name, field.initial)
        if callable(initial):
            initial = initial()
        if initial is None or isinstance(field, forms.FileField):
            continue
        data[key] = initial


# --- The experiment -------------------------------------------------------------------


def _experiment_form(spec: dict[str, Any], team: Team, errors: _Errors) -> tuple[
        ExperimentForm, _Binding]:
    probe = ExperimentForm(teams=[team])
    binding = _Binding(errors)
    binding.data["team"] = team.pk
    for key, name in TOP_FIELDS.items():
        if key in spec:
            binding.put(name, key, spec[key], probe.fields[name])
        else:
            binding.paths[name] = key
    binding.paths["team"] = "team"
    dataset = _object(spec.get("dataset"), "dataset", errors)
    if "dataset" not in spec:
        errors.add("dataset", "Say which problems to run: an object with a source "
                   f"({', '.join(DATASET_FIELDS)}).")
    source = dataset.get("source")
    if source is not None and source not in DATASET_FIELDS:
        valid = ", ".join(DATASET_FIELDS)
        hint = (" Upload code problems as a dataset first and use source saved."
                if source == "code_upload" else "")
        errors.add("dataset.source", f"Unknown source {source!r}; choose one of {valid}.{hint}")
    elif source is not None:
        binding.data["dataset_source"] = source
        fields = DATASET_FIELDS[source]
        _unknown(dataset, ["source", *fields, *(["subset"] if source == "saved" else [])],
                 "dataset", errors, f"a {source} dataset")
        for key, name in fields.items():
            if key in dataset:
                binding.put(name, f"dataset.{key}", dataset[key], probe.fields[name])
            else:
                binding.paths[name] = f"dataset.{key}"
        if source == "saved":
            subset = _object(dataset.get("subset"), "dataset.subset", errors)
            _unknown(subset, SUBSET_FIELDS, "dataset.subset", errors, "a subset")
            for key, name in SUBSET_FIELDS.items():
                path = f"dataset.subset.{key}"
                if key in subset:
                    binding.put(name, path, subset[key], probe.fields[name])
                else:
                    binding.paths[name] = path
    binding.paths["dataset_source"] = "dataset.source"
    for names in DATASET_FIELDS.values():
        for name in names.values():
            binding.paths.setdefault(name, "dataset")
    # The verifier's fields depend on the verifier and dataset chosen: bind once to
    # learn them, then bind the complete data.
    form = ExperimentForm(binding.data, teams=[team])
    config = _object(spec.get("verifier_config"), "verifier_config", errors)
    verifier_fields = {name.split("__", 1)[1]: name for name in form.verifier_fields}
    _unknown(config, verifier_fields, "verifier_config",
             errors, f"the {form.verifier_name} verifier")
    for key, name in verifier_fields.items():
        path = f"verifier_config.{key}"
        if key in config:
            binding.put(name, path, config[key], form.fields[name])
        else:
            binding.paths[name] = path
    _fill_initial(form, binding.data)
    return ExperimentForm(binding.data, teams=[team]), binding


# --- Strategy rows --------------------------------------------------------------------


def _row_form(index: int, row: dict[str, Any], n_samples: int | None,
              errors: _Errors) -> tuple[StrategyForm, _Binding]:
    path = f"strategies[{index}]"
    prefix = f"s-{index}-"
    binding = _Binding(errors)
    probe = StrategyForm(prefix=f"s-{index}")
    for key in ROW_FIELDS:
        if key in row:
            binding.put(prefix + key, f"{path}.{key}", row[key], probe.fields[key])
        else:
            binding.paths[prefix + key] = f"{path}.{key}"
    form = StrategyForm(binding.data, prefix=f"s-{index}", n_samples=n_samples)
    groups: dict[str, tuple[str, dict[str, str]]] = {
        "prompt_config": ("prompt scheme " + form.scheme_name, _names(form.scheme_fields)),
        "selector_config": ("selector " + form.selector_name, _names(form.selector_fields)),
        "decoder_config": ("decoder " + form.decoder_name, _names(form.decoder_fields)),
        "sampling": ("sampling", {name: name for name in form.fields
                                  if name not in (*ROW_FIELDS, *_prefixed(form))}),
    }
    for group, (what, fields) in groups.items():
        values = _object(row.get(group), f"{path}.{group}", errors)
        _unknown(values, fields, f"{path}.{group}", errors, f"the {what}")
        for key, name in fields.items():
            field_path = f"{path}.{group}.{key}"
            if key in values:
                binding.put(prefix + name, field_path, values[key], form.fields[name])
            else:
                binding.paths[prefix + name] = field_path
    _fill_initial(form, binding.data, prefix)
    return StrategyForm(binding.data, prefix=f"s-{index}", n_samples=n_samples), binding


def _names(form_names: list[str]) -> dict[str, str]:
    """JSON key -> form field name for a config group (``sel__threshold`` -> ...)."""
    return {name.split("__", 1)[1]: name for name in form_names}


def _prefixed(form: StrategyForm) -> list[str]:
    return [*form.scheme_fields, *form.selector_fields, *form.decoder_fields]


def _row_label(row: dict[str, Any], path: str, errors: _Errors) -> str:
    label = row.get("label", "")
    if label is None:
        return ""
    if not isinstance(label, str):
        errors.add(f"{path}.label", "Expected a string.")
        return ""
    if len(label) > MAX_LABEL:
        errors.add(f"{path}.label", f"At most {MAX_LABEL} characters.")
    if "\x00" in label:
        errors.add(f"{path}.label", "Null characters are not allowed.")
    return label.strip()


# --- Errors back to paths -------------------------------------------------------------


def _collect(form: forms.Form, binding: _Binding, errors: _Errors, fallback: str,
             prefix: str = "") -> None:
    for name, messages in form.errors.items():
        key = f"{prefix}{name}" if name != forms.forms.NON_FIELD_ERRORS else ""
        path = binding.paths.get(key, fallback) if key else fallback
        if errors.has(path) and key in binding.paths:
            continue  # the JSON type was wrong: that message says it better
        for message in messages:
            errors.add(path, str(message))


def _n_samples(spec: dict[str, Any]) -> int | None:
    value = spec.get("n_samples")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rows(value: Any, n_samples: int | None, errors: _Errors, *, required: bool = True
          ) -> list[tuple[StrategyForm, str, str]]:
    """Each row's bound form, JSON path and label; their errors go to ``errors``."""
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        errors.add("strategies", "Add at least one strategy (a list of objects).")
        return []
    if len(value) > MAX_STRATEGIES:
        errors.add("strategies", f"At most {MAX_STRATEGIES} strategies; got {len(value)}.")
        return []
    rows = []
    for index, row in enumerate(value):
        path = f"strategies[{index}]"
        if not isinstance(row, dict):
            errors.add(path, "Expected an object.")
            continue
        _unknown(row, ROW_KEYS, path, errors, "a strategy")
        label = _row_label(row, path, errors)
        row_form, row_binding = _row_form(index, row, n_samples, errors)
        row_form.is_valid()
        _collect(row_form, row_binding, errors, path, prefix=f"s-{index}-")
        rows.append((row_form, path, label))
    return rows


def _specs(rows: list[tuple[StrategyForm, str, str]]) -> list[StrategySpec]:
    return [dataclasses.replace(f.cleaned_data["spec"], label=label) for f, _, label in rows]


def parse_spec(data: Any, *, team: Team) -> ExperimentSpec:
    """The experiment ``data`` describes, for ``team``; ``SpecError`` with every problem
    by JSON path otherwise. Callers check the user's role in ``team`` first: a valid
    spec stores its dataset (built-in arithmetic, HumanEval or typed prompts) on first use,
    as the form does."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise SpecError({NON_FIELD: ["Expected a JSON object."]})
    _unknown(data, TOP_KEYS, "", errors, "a spec")
    form, binding = _experiment_form(data, team, errors)
    rows = _rows(data.get("strategies"), _n_samples(data), errors)
    form.is_valid()
    _collect(form, binding, errors, "")
    if form.is_valid() and rows and all(f.is_valid() for f, _, _ in rows):
        for row_form, path, _ in rows:
            for message in form.dataset_fit_errors([row_form.cleaned_data["spec"]]):
                errors.add(f"{path}.selector", message.removeprefix("Strategy 1: "))
    if errors.by_path:
        raise SpecError(errors.by_path)
    return _checked(form, _specs(rows), team)


#: The keys of an amendment (``lifecycle.amend_experiment``).
AMEND_KEYS = ("n_samples", "strategies")


def parse_amendment(data: Any, *, n_samples: int) -> tuple[int | None, list[StrategySpec]]:
    """A finished experiment's amendment: ``{"n_samples": 64, "strategies": [...]}``,
    both optional; the rows are checked like a spec's for the new N (``n_samples``, the
    experiment's when the amendment leaves it out). ``SpecError`` by JSON path."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise SpecError({NON_FIELD: ["Expected a JSON object."]})
    _unknown(data, AMEND_KEYS, "", errors, "an amendment")
    new_n = data.get("n_samples")
    if new_n is not None and (isinstance(new_n, bool) or not isinstance(new_n, int)):
        errors.add("n_samples", "Expected an integer.")
        new_n = None
    rows = _rows(data.get("strategies"), new_n or n_samples, errors, required=False)
    if errors.by_path:
        raise SpecError(errors.by_path)
    return new_n, _specs(rows)


def _checked(form: ExperimentForm, rows: list[StrategySpec], team: Team) -> ExperimentSpec:
    """The spec, after the checks ``submit_experiment`` makes (so it cannot refuse it)."""
    data = form.cleaned_data
    errors = _Errors()
    for index, row in enumerate(rows):
        try:
            row.for_experiment(data["n_samples"], data["max_new_tokens"])
        except ValueError as exc:
            errors.add(f"strategies[{index}]", str(exc))
    if errors.by_path:
        raise SpecError(errors.by_path)
    spec = ExperimentSpec(
        name=data["name"], model_name=data["model_name"], dataset=build_dataset(team, data),
        n_samples=data["n_samples"], max_new_tokens=data["max_new_tokens"], seed=data["seed"],
        strategies=rows, verifier=form.verifier_name,
        verifier_config=data.get("verifier_config", {}), self_eval=data["self_eval"],
        subset=data.get("subset", {}),
    )
    try:
        spec.check_dataset_fit()
    except ValueError as exc:
        raise SpecError({"dataset": [str(exc)]}) from None
    return spec


DATASET_BUILDERS: dict[str, Callable[[Team, dict[str, Any]], Dataset]] = {
    "arithmetic": lambda team, data: ensure_arithmetic_dataset(
        team, size=data["arithmetic_size"], seed=data["arithmetic_seed"],
        difficulty=data["arithmetic_difficulty"]),
    "humaneval": lambda team, data: ensure_humaneval_dataset(team, size=data["humaneval_size"]),
    "code_upload": lambda team, data: ensure_code_dataset(team, data["code_rows"],
                                                          filename=data["code_filename"]),
    "prompts": lambda team, data: ensure_prompt_dataset(team, data["prompt_rows"]),
    "saved": lambda team, data: data["dataset"],
}


def build_dataset(team: Team, data: dict[str, Any]) -> Dataset:
    """The dataset a valid ``ExperimentForm``'s cleaned data names, stored on first use
    (every source the form has; a JSON spec reaches all but the code file upload)."""
    return DATASET_BUILDERS[data["dataset_source"]](team, data)

