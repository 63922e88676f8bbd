"""Every state change of an experiment goes through these functions.

They take plain arguments (ids, dataclasses), never a request. Transitions are
conditional UPDATEs that tell the caller whether it won, so two deliveries of
the same task cannot both act on the same transition.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from strategies.config import pool_key
from strategies.sampling import DecodingConfig
from webapp.datasets.models import Problem
from webapp.experiments.models import (
    Experiment,
    PoolProblem,
    Sample,
    SamplePool,
    Strategy,
    Verdict,
)
from webapp.experiments.specs import (
    ADAPTIVE_DECODER,
    BEAM_DECODERS,
    BEAM_FIXED_FIELDS,
    CODE_SELECTORS,
    SINGLE_CALL_SCHEMES,
    TEST_SCHEME,
    ExperimentSpec,
    StrategySpec,
    test_decoding,
)
from webapp.teams.models import Team

logger = logging.getLogger(__name__)

MAX_SAMPLES = 256
DEFAULT_K_VALUES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The request types live in ``specs``; they are re-exported here for callers.
__all__ = [
    "ADAPTIVE_DECODER",
    "BEAM_DECODERS",
    "BEAM_FIXED_FIELDS",
    "CODE_SELECTORS",
    "SINGLE_CALL_SCHEMES",
    "ExperimentSpec",
    "StrategySpec",
]


# --- Team-scoped lookups -------------------------------------------------------------


def experiments_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Experiment]:
    if not user.is_authenticated:
        return Experiment.objects.none()
    return Experiment.objects.filter(team__memberships__user=user)


def get_experiment_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Experiment:
    """The experiment, if ``user`` belongs to its team; 404 for everybody else."""
    experiment = (
        experiments_for_user(user).select_related("dataset", "team").filter(pk=pk).first()
    )
    if experiment is None:
        raise Http404("No such experiment")
    return experiment


# --- Submission ----------------------------------------------------------------------


def k_values_for(n: int) -> list[int]:
    return [k for k in DEFAULT_K_VALUES if k <= n]


def ensure_pool(
    *,
    model_name: str,
    prompt_scheme: str,
    decoding: DecodingConfig,
    seed: int,
    prompt_config: Mapping[str, Any] | None = None,
    decoder: Mapping[str, Any] | None = None,
) -> SamplePool:
    """The pool for exactly these generation inputs, created on first use.

    ``prompt_scheme`` is the scheme's pool name (``StrategySpec.pool_scheme``), which
    carries a hash of its config, and of a beam ``decoder``, when it has one.
    """
    key = pool_key(model_name, prompt_scheme, decoding, seed)
    pool, _ = SamplePool.objects.get_or_create(
        key=key,
        defaults={
            "model_name": model_name,
            "prompt_scheme": prompt_scheme,
            "prompt_config": dict(prompt_config or {}),
            "decoding": decoding.key_fields(),
            "decoder": dict(decoder or {}),
            "seed": seed,
        },
    )
    return pool


def submit_experiment(
    team: Team, user: AbstractBaseUser | None, spec: ExperimentSpec
) -> Experiment:
    """Store the experiment and its strategies, then enqueue its work after commit."""
    if not spec.strategies:
        raise ValueError("An experiment needs at least one strategy.")
    if not 1 <= spec.n_samples <= MAX_SAMPLES:
        raise ValueError(f"Samples per problem must be between 1 and {MAX_SAMPLES}.")
    rows = [row.for_experiment(spec.n_samples, spec.max_new_tokens) for row in spec.strategies]
    spec.check_dataset_fit()
    with transaction.atomic():
        experiment = Experiment.objects.create(
            team=team,
            created_by=user,
            name=spec.name,
            model_name=spec.model_name,
            dataset=spec.dataset,
            n_samples=spec.n_samples,
            max_new_tokens=spec.max_new_tokens,
            seed=spec.seed,
            k_values=k_values_for(spec.n_samples),
            verifier=spec.verifier,
            verifier_config=dict(spec.verifier_config),
            self_eval=spec.self_eval,
        )
        for position, row in enumerate(rows):
            decoding = row.decoding(spec.max_new_tokens)
            pool = ensure_pool(
                model_name=spec.model_name,
                prompt_scheme=row.pool_scheme(),
                decoding=decoding,
                seed=spec.seed,
                prompt_config=row.prompt_config,
                decoder=row.pool_decoder(),
            )
            Strategy.objects.create(
                experiment=experiment,
                position=position,
                label=row.label or row.default_label(),
                prompt_scheme=row.prompt_scheme,
                prompt_config=dict(row.prompt_config),
                # A beam row's sampling settings do not apply: store the pool's.
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                top_k=decoding.top_k,
                sampling={} if row.is_beam else dict(row.sampling),
                selector=row.selector,
                selector_config=dict(row.selector_config),
                n=row.pool_size(spec.n_samples, spec.max_new_tokens),
                pool=pool,
                test_pool=ensure_pool(
                    model_name=spec.model_name, prompt_scheme=TEST_SCHEME,
                    decoding=test_decoding(spec.max_new_tokens), seed=spec.seed,
                ) if row.uses_generated_tests else None,
                test_n=row.test_pool_size(),
            )
        experiment_id = experiment.pk
        transaction.on_commit(lambda: enqueue_experiment(experiment_id))
    return experiment


def pool_demands(experiment: Experiment) -> dict[int, int]:
    """Samples per problem each pool must hold for this experiment: {pool id: n}."""
    demands: dict[int, int] = {}
    rows = experiment.strategies.values_list("pool_id", "n", "test_pool_id", "test_n")
    for pool_id, n, test_pool_id, test_n in rows:
        demands[pool_id] = max(demands.get(pool_id, 0), n)
        if test_pool_id is not None:
            demands[test_pool_id] = max(demands.get(test_pool_id, 0), test_n)
    return demands


def chunk_size(demanded: Sequence[tuple[SamplePool, int]]) -> int:
    """Problems per generation task for these pools of one model: ``STRATLAB_CHUNK_SIZE``,
    fewer when one problem's samples over all the pools fill more than a batch
    (``STRATLAB_MAX_BATCH_ROWS``), so a task's work stays about one batch or a chunk."""
    rows = sum(1 if pool.is_greedy else n for pool, n in demanded)
    per_batch = max(1, settings.STRATLAB_MAX_BATCH_ROWS // max(1, rows))
    return max(1, min(settings.STRATLAB_CHUNK_SIZE, per_batch))


def problem_chunks(experiment: Experiment, size: int) -> list[list[int]]:
    ids = list(experiment.dataset.problems.order_by("index").values_list("pk", flat=True))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def model_choices() -> list[tuple[str, str]]:
    """(name, label) of every model the workers can load: the model catalogue is one
    of the two places the web layer reaches into ``workers`` (with the enqueue below)."""
    from workers.runtime.models import available_models

    specs = available_models(settings.STRATLAB_EXTRA_MODELS)
    return [(name, spec.label) for name, spec in specs.items()]


def enqueue_experiment(experiment_id: int) -> None:
    """Send one generation task per (model, slice of problems), covering every pool of
    that model, so that the pools' samples share the engine's batches."""
    from kombu.exceptions import OperationalError

    from workers import tasks

    experiment = Experiment.objects.get(pk=experiment_id)
    demands = pool_demands(experiment)
    pools = SamplePool.objects.in_bulk(list(demands))
    by_model: dict[str, list[list[int]]] = {}
    for pool_id, n in demands.items():
        by_model.setdefault(pools[pool_id].model_name, []).append([pool_id, n])
    try:
        for demanded in by_model.values():
            size = chunk_size([(pools[pool_id], n) for pool_id, n in demanded])
            for chunk in problem_chunks(experiment, size):
                tasks.generate_chunk.delay(experiment_id, demanded, chunk)
    except OperationalError as exc:
        fail_experiment(experiment_id, f"Could not reach the task broker (Redis): {exc}")


# --- Worker-side transitions ---------------------------------------------------------


def claim_experiment(experiment_id: int) -> bool:
    """Move a queued experiment to running; True when this call made the move."""
    won = Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.QUEUED).update(
        status=Experiment.Status.RUNNING, started=timezone.now()
    )
    return bool(won)


def is_active(experiment_id: int) -> bool:
    return Experiment.objects.filter(
        pk=experiment_id, status__in=[Experiment.Status.QUEUED, Experiment.Status.RUNNING]
    ).exists()


def fail_experiment(experiment_id: int, reason: str) -> bool:
    """Mark the experiment failed with a readable reason (first failure wins)."""
    won = Experiment.objects.filter(
        pk=experiment_id, status__in=[Experiment.Status.QUEUED, Experiment.Status.RUNNING]
    ).update(status=Experiment.Status.FAILED, error=reason[:2000], finished=timezone.now())
    if won:
        logger.warning("experiment %s failed: %s", experiment_id, reason)
    return bool(won)


def _done_problems(pool_id: int, problem_ids: Sequence[int], n: int) -> set[int]:
    """Problems of the slice generated for a request of ``n``: a completion marker covers
    ``n`` and its samples are still stored (a variable-size scheme may hold fewer than n)."""
    markers = PoolProblem.objects.filter(
        pool_id=pool_id, problem_id__in=problem_ids, n_requested__gte=n
    ).values_list("problem_id", "n_done")
    stored = dict(
        Sample.objects.filter(pool_id=pool_id, problem_id__in=problem_ids, index__lt=n)
        .values("problem_id")
        .annotate(c=Count("id"))
        .values_list("problem_id", "c")
    )
    return {pid for pid, done in markers if stored.get(pid, 0) >= min(done, n)}


def is_pool_problem_done(pool_id: int, problem_id: int, n: int) -> bool:
    """Whether the pool's samples for the problem were generated for a request of ``n``."""
    return problem_id in _done_problems(pool_id, [problem_id], n)


def problems_missing_samples(pool_id: int, problem_ids: Sequence[int], n: int) -> list[Problem]:
    """Problems of the slice whose samples 0..n-1 were not generated (see ``_done_problems``)."""
    done = _done_problems(pool_id, problem_ids, n)
    missing = [pid for pid in problem_ids if pid not in done]
    return list(Problem.objects.filter(pk__in=missing).order_by("index"))


def _problems_lacking_verdicts(
    pool_id: int, problem_ids: Sequence[int], n: int, verifier: str
) -> set[int]:
    """Problems of the slice with a sample among 0..n-1 that has no ``verifier`` verdict."""
    return set(
        Sample.objects.filter(pool_id=pool_id, problem_id__in=problem_ids, index__lt=n)
        .exclude(verdicts__verifier=verifier)
        .values_list("problem_id", flat=True)
    )


def problems_needing_work(
    pool_id: int, problem_ids: Sequence[int], n: int, *, scores: bool,
    judge: str | None = None,
) -> list[Problem]:
    """Problems lacking samples, or (with ``scores``) self-evaluation scores, or (with a
    ``judge`` verifier key) the model judge's verdicts."""
    missing = {p.pk: p for p in problems_missing_samples(pool_id, problem_ids, n)}
    lacking: set[int] = set()
    if scores:
        from webapp.experiments.verification import SELF_EVAL_VERIFIER

        lacking |= _problems_lacking_verdicts(pool_id, problem_ids, n, SELF_EVAL_VERIFIER)
    if judge:
        lacking |= _problems_lacking_verdicts(pool_id, problem_ids, n, judge)
    for problem in Problem.objects.filter(pk__in=lacking - set(missing)):
        missing[problem.pk] = problem
    return sorted(missing.values(), key=lambda p: p.index)


def samples_without_verdict(
    pool_id: int, problem_id: int, n: int, verifier: str
) -> list[tuple[int, str]]:
    """(sample id, text) of the problem's first ``n`` samples without a ``verifier`` verdict."""
    return list(
        Sample.objects.filter(pool_id=pool_id, problem_id=problem_id, index__lt=n)
        .exclude(verdicts__verifier=verifier)
        .order_by("index")
        .values_list("pk", "text")
    )


def samples_without_scores(pool_id: int, problem_id: int, n: int) -> list[tuple[int, str]]:
    """(sample id, text) of the problem's first ``n`` samples without a self-eval score."""
    from webapp.experiments.verification import SELF_EVAL_VERIFIER

    return samples_without_verdict(pool_id, problem_id, n, SELF_EVAL_VERIFIER)


def existing_sample_indices(pool_id: int, problem_id: int) -> set[int]:
    return set(
        Sample.objects.filter(pool_id=pool_id, problem_id=problem_id).values_list(
            "index", flat=True
        )
    )


@dataclass(frozen=True)
class SampleRecord:
    index: int
    text: str
    prompt_tokens: int
    generated_tokens: int
    logprob_sum: float
    finish_reason: str
    seconds: float


def record_samples(
    pool_id: int, problem_id: int, records: Sequence[SampleRecord], *,
    requested: int | None = None,
) -> int:
    """Store generated samples; an index already stored is left untouched.

    Returns how many rows were new. The unique (pool, problem, index) key is what
    makes a redelivered generation task harmless. A generator passes ``requested``,
    the N it was asked for: the same transaction then marks the (pool, problem)
    complete for requests up to N, with however many samples the scheme produced.
    """
    with transaction.atomic():
        before = Sample.objects.filter(pool_id=pool_id, problem_id=problem_id).count()
        Sample.objects.bulk_create(
            [
                Sample(
                    pool_id=pool_id,
                    problem_id=problem_id,
                    index=r.index,
                    text=r.text,
                    prompt_tokens=r.prompt_tokens,
                    generated_tokens=r.generated_tokens,
                    logprob_sum=r.logprob_sum,
                    finish_reason=r.finish_reason,
                    seconds=r.seconds,
                )
                for r in records
            ],
            ignore_conflicts=True,
        )
        stored = Sample.objects.filter(pool_id=pool_id, problem_id=problem_id)
        if requested is not None:
            marker, created = PoolProblem.objects.get_or_create(
                pool_id=pool_id, problem_id=problem_id,
                defaults={"n_requested": requested,
                          "n_done": stored.filter(index__lt=requested).count()},
            )
            if not created:
                requested = max(requested, marker.n_requested)
                PoolProblem.objects.filter(pk=marker.pk).update(
                    n_requested=requested, n_done=stored.filter(index__lt=requested).count()
                )
        return stored.count() - before


@dataclass(frozen=True)
class GenerationTotals:
    """Samples an experiment expects and whether every (pool, problem) is generated."""

    expected: int
    is_complete: bool


def generation_totals(experiment: Experiment) -> GenerationTotals:
    """Expected samples: a (pool, problem) done for the pool's demand n (marker and samples
    stored, as in ``_done_problems``) counts what it holds up to n, any other counts n;
    complete when every one is done."""
    problems = experiment.dataset.problems.count()
    demands = pool_demands(experiment)
    stored = {
        (pool_id, problem_id): c
        for pool_id, problem_id, c in _experiment_samples(experiment)
        .values("pool_id", "problem_id")
        .annotate(c=Count("id"))
        .values_list("pool_id", "problem_id", "c")
    }
    expected = 0
    marked: dict[int, int] = {}
    markers = PoolProblem.objects.filter(
        pool_id__in=demands, problem__dataset_id=experiment.dataset_id
    ).values_list("pool_id", "problem_id", "n_requested", "n_done")
    for pool_id, problem_id, requested, done in markers:
        n = demands[pool_id]
        if requested >= n and stored.get((pool_id, problem_id), 0) >= min(done, n):
            expected += min(done, n)
            marked[pool_id] = marked.get(pool_id, 0) + 1
    unmarked = 0
    for pool_id, n in demands.items():
        left = problems - marked.get(pool_id, 0)
        expected += left * n
        unmarked += left
    return GenerationTotals(expected=expected, is_complete=unmarked == 0)


def expected_counts(experiment: Experiment) -> dict[str, int]:
    problems = experiment.dataset.problems.count()
    return {
        "samples": generation_totals(experiment).expected,
        "results": experiment.strategies.count() * problems,
    }


def _experiment_samples(experiment: Experiment) -> QuerySet[Sample]:
    condition = Q(pk__in=[])
    for pool_id, n in pool_demands(experiment).items():
        condition |= Q(pool_id=pool_id, index__lt=n)
    return Sample.objects.filter(condition, problem__dataset_id=experiment.dataset_id)


def progress(experiment: Experiment) -> list[dict[str, object]]:
    """Per-stage progress: generate, verify, select/metrics, each with done/total."""
    from webapp.experiments.verification import verifier_for

    expected = expected_counts(experiment)
    samples = _experiment_samples(experiment)
    generated = samples.count()
    verified = Verdict.objects.filter(
        sample__in=samples, verifier=verifier_for(experiment)
    ).count()
    selected = experiment.strategies.aggregate(c=Count("results"))["c"] or 0
    stages = [
        ("generate", "Generate", generated, expected["samples"]),
        ("verify", "Verify", verified, expected["samples"]),
        ("select", "Select and measure", selected, expected["results"]),
    ]
    rows = []
    for key, label, done, total in stages:
        done = min(done, total)
        percent = 100 if total == 0 else round(100 * done / total)
        rows.append(
            {"key": key, "label": label, "done": done, "total": total, "percent": percent}
        )
    return rows


def claim_metrics_if_verified(experiment_id: int) -> bool:
    """True (once) when every (pool, problem) is generated and every sample has its verdict."""
    from webapp.experiments.verification import verifier_for

    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if experiment.metrics_claimed_at is not None or experiment.is_done:
        return False
    totals = generation_totals(experiment)
    if not totals.is_complete:
        return False
    samples = _experiment_samples(experiment)
    verified = Verdict.objects.filter(
        sample__in=samples, verifier=verifier_for(experiment)
    ).count()
    if verified < totals.expected:
        return False
    from webapp.experiments.code_verification import missing_matrices

    if missing_matrices(experiment):
        return False
    won = Experiment.objects.filter(
        pk=experiment_id, metrics_claimed_at__isnull=True, status=Experiment.Status.RUNNING
    ).update(metrics_claimed_at=timezone.now())
    return bool(won)


def finish_experiment(experiment_id: int) -> bool:
    won = Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.RUNNING).update(
        status=Experiment.Status.FINISHED, finished=timezone.now()
    )
    return bool(won)
