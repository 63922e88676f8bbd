"""Dataset forms: the upload (file and team) and the column mapping, which turns its
fields into a ``ColumnMapping`` (its ``ValueError`` becomes a field error)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from webapp.datasets.mapping import ColumnMapping
from webapp.datasets.models import Dataset
from webapp.datasets.presets import Preset
from webapp.teams.models import Team

ANSWER_FORMATS = [
    ("plain", "The whole value"),
    ("gsm8k", "What follows #### (GSM8K)"),
    ("boxed", "The last \\boxed{} (MATH)"),
]
# Mapping fields that name one column, and those that name several.
COLUMN_FIELDS = ("prompt", "answer", "answer_key", "tests", "entry_point",
                 "canonical_solution", "test_setup", "id")
COLUMNS_FIELDS = ("choices", "metadata")
MAPPING_FIELDS = ("kind", "prompt", "template", "answer", "answer_format", "choices",
                  "answer_key", "tests", "entry_point", "canonical_solution", "test_setup",
                  "id", "metadata")
# Which field a ``ColumnMapping`` error is about: the first phrase (in this order) its
# message contains; none of them makes it a form-wide error.
ERROR_FIELDS = (
    ("prompt column", "prompt"), ("template", "template"), ("answer key", "answer_key"),
    ("answer format", "answer_format"), ("entry point", "entry_point"), ("tests", "tests"),
    ("choice", "choices"), ("metadata", "metadata"), ("answer", "answer"),
    ("test setup", "test_setup"), ("canonical", "canonical_solution"), ("kind", "kind"),
)


class UploadForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    file = forms.FileField(
        allow_empty_file=True,  # an empty file gets the parsers' located message
        help_text="JSONL, JSON array, CSV, TSV or Parquet.",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".jsonl,.ndjson,.json,.csv,.tsv,.tab,.parquet,.pq"}
        ),
    )

    def __init__(self, *args: Any, teams: Sequence[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["team"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Team.objects.filter(pk__in=[t.pk for t in teams]).order_by("name")


class MappingForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: where the data comes from, what it tests.",
    )
    kind = forms.ChoiceField(
        choices=Dataset.Kind.choices,
        help_text="Sets the default verifier in the experiment form.",
    )
    prompt = forms.ChoiceField(required=False, label="Prompt column")
    template = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Prompt template",
        help_text="Instead of a prompt column, e.g. Question: {question}\\nAnswer:",
    )
    answer = forms.ChoiceField(required=False, label="Reference answer column")
    answer_format = forms.ChoiceField(choices=ANSWER_FORMATS, label="Answer is")
    choices = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Choices",
        help_text="Multiple choice: one column holding a list, or one column per choice.",
    )
    answer_key = forms.ChoiceField(
        required=False, label="Answer key column",
        help_text="Multiple choice: a letter (A, B, ...) or an index.",
    )
    tests = forms.ChoiceField(
        required=False, label="Unit tests column",
        help_text="A check(candidate) program, or a list of asserts (MBPP).",
    )
    entry_point = forms.ChoiceField(
        required=False, label="Entry point column",
        help_text="Optional: else the function the prompt defines or the tests call.",
    )
    canonical_solution = forms.ChoiceField(
        required=False, label="Reference solution column",
        help_text="Optional: calibrates each problem's time limit.",
    )
    test_setup = forms.ChoiceField(
        required=False, label="Test setup column",
        help_text="Optional: code run before the tests (imports).",
    )
    id = forms.ChoiceField(required=False, label="Id column",
                           help_text="Ids must be unique.")
    metadata = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Keep as metadata",
    )

    def __init__(self, *args: Any, columns: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = [(c, c) for c in columns]
        for name in COLUMN_FIELDS:
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "(none)"), *options]
        for name in COLUMNS_FIELDS:
            field = self.fields[name]
            assert isinstance(field, forms.MultipleChoiceField)
            field.choices = options

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if any(name in self.errors for name in MAPPING_FIELDS):
            return data
        try:
            data["mapping"] = ColumnMapping(
                kind=data["kind"], prompt=data["prompt"], template=data["template"],
                answer=data["answer"], answer_format=data["answer_format"],
                choices=tuple(data["choices"]), answer_key=data["answer_key"],
                tests=data["tests"], entry_point=data["entry_point"],
                canonical_solution=data["canonical_solution"], test_setup=data["test_setup"],
                id=data["id"], metadata=tuple(data["metadata"]),
            )
        except ValueError as exc:
            self.add_error(field_named_in(str(exc)), str(exc))
        return data


def field_named_in(message: str) -> str | None:
    """The mapping field a ``ColumnMapping`` error is about, or None (form-wide).

    >>> field_named_in("a math dataset needs the reference answer column")
    'answer'
    >>> field_named_in("a multiple-choice dataset needs the answer key column")
    'answer_key'
    """
    lowered = message.lower()
    return next((name for phrase, name in ERROR_FIELDS if phrase in lowered), None)


def mapping_initial(preset: Preset | None, columns: Sequence[str]) -> dict[str, Any]:
    """The mapping form's starting values: the recognised layout's, or the first column
    as an open-ended prompt."""
    if preset is None:
        return {"kind": Dataset.Kind.OPEN, "prompt": columns[0] if columns else "",
                "answer_format": "plain"}
    values = preset.mapping.to_dict()
    return {name: values.get(name) for name in MAPPING_FIELDS if name in values}


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200, label="New name")
