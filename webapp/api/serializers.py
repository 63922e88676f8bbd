"""What the API answers, and the shapes of what it accepts, for the OpenAPI schema.

Outputs are read-only serializers of stored rows (or of the plain dicts the services
return). Inputs are validated where the pages validate them (the experiment spec by
``experiments.spec_json`` through the new-experiment form, uploads by
``datasets.uploads``); the input serializers here only describe them in the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from webapp.datasets.models import Dataset
from webapp.experiments.models import Experiment

# --- Errors ---------------------------------------------------------------------------


class ErrorsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """400: what is wrong, by where it is (a JSON path such as
    ``strategies[2].selector_config.threshold``, or a form field); a body that cannot
    be read at all (not JSON) gets ``detail`` instead."""

    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   required=False)
    detail = serializers.CharField(required=False)
    total = serializers.IntegerField(
        required=False, help_text="For an upload: how many bad rows in all (at most 50 listed)."
    )


class DetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()


def page_of(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:  # type: ignore[type-arg]
    """The schema of one page of a list (``?page=``, ``?page_size=`` up to 500)."""
    name = serializer_class.__name__.removesuffix("Serializer")
    return inline_serializer(f"Paged{name}List", {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    })


# --- Registry -------------------------------------------------------------------------


class ModelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    label = serializers.CharField()
    is_default = serializers.BooleanField()


class TeamSerializer(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField(source="team.slug")
    name = serializers.CharField(source="team.name")
    role = serializers.CharField()
    members = serializers.IntegerField()
    experiments = serializers.IntegerField()
    datasets = serializers.IntegerField()


class CatalogueSerializer(serializers.Serializer):  # type: ignore[type-arg]
    samplers = serializers.ListField(child=serializers.DictField())
    decoding = serializers.DictField()
    decoders = serializers.ListField(child=serializers.DictField())
    schemes = serializers.ListField(child=serializers.DictField())
    verifiers = serializers.ListField(child=serializers.DictField())
    selectors = serializers.ListField(child=serializers.DictField())


# --- Datasets -------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    experiment_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Dataset
        fields = ["id", "team", "name", "version", "description", "source", "kind",
                  "row_count", "file_name", "format", "content_key", "created",
                  "experiment_count"]
        read_only_fields = fields


class ProblemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    prompt = serializers.CharField()
    answer = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField()


class DatasetUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team = serializers.CharField(help_text="The team's slug (GET /api/v1/teams/).")
    file = serializers.FileField(help_text="JSONL, JSON array, CSV, TSV or Parquet.")
    name = serializers.CharField(required=False, help_text="Defaults to the file's name.")
    description = serializers.CharField(required=False)
    kind = serializers.ChoiceField(
        choices=Dataset.Kind.choices, required=False,
        help_text="Defaults to the recognised layout's kind.")
    mapping = serializers.CharField(
        required=False,
        help_text='A JSON object mapping columns, e.g. {"prompt": "question", "answer": '
                  '"answer", "answer_format": "gsm8k"}; defaults to the recognised layout '
                  "(GSM8K, MATH, HumanEval, MBPP, ...).")


# --- Experiments ----------------------------------------------------------------------


class StageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    label = serializers.CharField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()


class StrategySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    label = serializers.CharField()
    prompt_scheme = serializers.CharField()
    prompt_config = serializers.DictField()
    decoder = serializers.SerializerMethodField()
    decoder_config = serializers.SerializerMethodField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    top_k = serializers.IntegerField()
    sampling = serializers.DictField()
    selector = serializers.CharField()
    selector_config = serializers.DictField()
    n = serializers.IntegerField()
    pool = serializers.IntegerField(source="pool_id")
    test_pool = serializers.IntegerField(source="test_pool_id", allow_null=True)
    test_n = serializers.IntegerField()

    def get_decoder(self, strategy: Any) -> str:
        return str(strategy.pool.decoder.get("name") or "sample")

    def get_decoder_config(self, strategy: Any) -> dict[str, Any]:
        return dict(strategy.pool.decoder.get("config") or {})


class ExperimentListSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    dataset_name = serializers.CharField(source="dataset.__str__", read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "team", "name", "status", "model_name", "dataset", "dataset_name",
                  "n_samples", "created", "started", "finished"]
        read_only_fields = fields


class ExperimentSerializer(ExperimentListSerializer):
    progress = StageSerializer(many=True, read_only=True)
    strategies = StrategySerializer(many=True, read_only=True, source="strategy_rows")

    class Meta(ExperimentListSerializer.Meta):
        fields = [*ExperimentListSerializer.Meta.fields, "error", "max_new_tokens", "seed",
                  "k_values", "verifier", "verifier_config", "self_eval", "subset",
                  "manifest", "progress", "strategies"]
        read_only_fields = fields


class MetricSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    k = serializers.IntegerField(help_text="0 for a figure without a k.")
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="95% bootstrap interval.")
    ci_high = serializers.FloatField(allow_null=True)


class StrategyMetricsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    strategy = serializers.IntegerField()
    label = serializers.CharField()
    metrics = MetricSerializer(many=True)
    labelled_metrics = MetricSerializer(
        many=True, help_text="The same figures with the team's human labels in place of "
                             "the automatic verdicts (empty until a label is set).")


class ResultSerializer(serializers.Serializer):  # type: ignore[type-arg]
    strategy = serializers.IntegerField(source="strategy_id")
    problem = serializers.IntegerField(source="problem_id")
    problem_index = serializers.IntegerField(source="problem.index")
    n = serializers.IntegerField()
    n_correct = serializers.IntegerField(allow_null=True)
    selected_index = serializers.IntegerField(allow_null=True)
    selected_answer = serializers.CharField(allow_null=True)
    selected_credit = serializers.FloatField(allow_null=True)
    tied_answers = serializers.ListField(child=serializers.CharField())


class LabelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    outcome = serializers.CharField()
    answer = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    updated = serializers.DateTimeField()


class SampleSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    problem = serializers.IntegerField(source="problem_id")
    problem_index = serializers.IntegerField(source="problem.index")
    pool = serializers.IntegerField(source="pool_id")
    index = serializers.IntegerField()
    strategies = serializers.ListField(
        child=serializers.IntegerField(), help_text="The strategies that read this candidate.")
    test_strategies = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The strategies (CodeT, B4) that read it as a generated test.")
    text = serializers.CharField()
    answer = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True, help_text="pass, fail, error, unjudged; "
                                                               "null before verification.")
    score = serializers.FloatField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)
    prompt_tokens = serializers.IntegerField()
    generated_tokens = serializers.IntegerField()
    logprob_sum = serializers.FloatField()
    finish_reason = serializers.CharField()
    seconds = serializers.FloatField()
    label = LabelSerializer(allow_null=True, help_text="The team's human label, if any.")


# --- The experiment spec (described here, validated by ``experiments.spec_json``) ------


class SubsetSpecSerializer(serializers.Serializer):  # type: ignore[type-arg]
    mode = serializers.ChoiceField(choices=["all", "first", "random", "ids"], required=False)
    k = serializers.IntegerField(required=False, min_value=1)
    seed = serializers.IntegerField(required=False, min_value=0)
    ids = serializers.ListField(child=serializers.CharField(), required=False)


class DatasetSpecSerializer(serializers.Serializer):  # type: ignore[type-arg]
    source = serializers.ChoiceField(choices=["arithmetic", "prompts", "humaneval", "saved"])
    size = serializers.IntegerField(
        required=False, help_text="arithmetic (1-1000) and humaneval (1-164): problems.")
    seed = serializers.IntegerField(required=False, help_text="arithmetic: the generator's seed.")
    difficulty = serializers.ChoiceField(choices=["easy", "mixed", "hard"], required=False)
    prompts = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="prompts: one per item, optionally 'prompt ||| expected answer'.")
    id = serializers.IntegerField(required=False, help_text="saved: a dataset of the team.")
    subset = SubsetSpecSerializer(required=False)


class StrategySpecSerializer(serializers.Serializer):  # type: ignore[type-arg]
    label = serializers.CharField(required=False, max_length=200)
    prompt_scheme = serializers.CharField(required=False, help_text="default direct")
    prompt_config = serializers.DictField(required=False)
    decoder = serializers.CharField(required=False, help_text="sample (default), beam_search, "
                                    "diverse_beam_search or adaptive_consistency")
    decoder_config = serializers.DictField(required=False)
    temperature = serializers.FloatField(required=False, help_text="default 0.7; 0 is greedy")
    top_p = serializers.FloatField(required=False)
    top_k = serializers.IntegerField(required=False)
    sampling = serializers.DictField(
        required=False, help_text="Further decoding settings: min_p, typical_p, top_h_alpha, "
                                  "ead, temperature_mix, ... (GET /api/v1/catalogue/).")
    selector = serializers.CharField(required=False, help_text="default majority")
    selector_config = serializers.DictField(required=False)


class ExperimentSpecSerializer(serializers.Serializer):  # type: ignore[type-arg]
    team = serializers.CharField(help_text="The team's slug.")
    name = serializers.CharField(max_length=200)
    model = serializers.CharField(required=False, help_text="GET /api/v1/models/")
    dataset = DatasetSpecSerializer()
    n_samples = serializers.IntegerField(required=False,
                                         help_text="N, 1-10000 (default 8); k is reported "
                                         "at the powers of two up to N")
    max_new_tokens = serializers.IntegerField(required=False, help_text="1-4096 (default 32)")
    seed = serializers.IntegerField(required=False, help_text="default 0")
    verifier = serializers.CharField(required=False, help_text="default: the dataset's")
    verifier_config = serializers.DictField(required=False)
    self_eval = serializers.BooleanField(required=False)
    strategies = StrategySpecSerializer(many=True)


class AmendmentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    n_samples = serializers.IntegerField(required=False, help_text="The larger N, up to 10000.")
    strategies = StrategySpecSerializer(many=True, required=False,
                                        help_text="Rows to add, as in a spec.")
