"""Every state change of an experiment goes through these functions.

They take plain arguments (ids, dataclasses), never a request. Transitions are
conditional UPDATEs that tell the caller whether it won, so two deliveries of
the same task cannot both act on the same transition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError

from strategies.recipe import generated_tests_recipe
from webapp.experiments import chunks
from webapp.experiments.code_verification import missing_matrices
from webapp.experiments.manifest import record_submitted
from webapp.experiments.models import (
    Experiment,
    ExperimentProblem,
    SamplePool,
    Strategy,
    Verdict,
)
from webapp.experiments.pools import (
    ensure_pool,
    experiment_samples,
    generation_totals,
    pool_demands,
)
from webapp.experiments.specs import ExperimentSpec, StrategySpec
from webapp.experiments.subsets import choose_problems
from webapp.experiments.tallies import experiment_counts
from webapp.experiments.verification import verifier_for
from webapp.model_catalogue import model_choices as catalogue_choices
from webapp.teams.models import Team

logger = logging.getLogger(__name__)

#: Samples per problem an experiment may ask for (repeated-sampling studies draw 10,000).
MAX_SAMPLES = 10_000
#: What the form, the API and an amendment answer to a larger N.
TOO_MANY_SAMPLES = f"Samples per problem (N) can be at most {MAX_SAMPLES:,}."


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
    """The k reported for N samples: the powers of two up to N.

    >>> k_values_for(10_000)[-3:]
    [2048, 4096, 8192]
    """
    return [2**i for i in range(max(0, n).bit_length())]


def submit_experiment(
    team: Team, user: AbstractBaseUser | None, spec: ExperimentSpec
) -> Experiment:
    """Store the experiment and its strategies, then enqueue its work after commit."""
    if not spec.strategies:
        raise ValueError("An experiment needs at least one strategy.")
    if not 1 <= spec.n_samples <= MAX_SAMPLES:
        raise ValueError(f"Samples per problem must be between 1 and {MAX_SAMPLES:,}.")
    rows = [row.for_experiment(spec.n_samples, spec.max_new_tokens) for row in spec.strategies]
    spec.check_dataset_fit()
    chosen = choose_problems(spec.dataset, spec.subset) if spec.subset else []
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
            subset=dict(spec.subset),
        )
        if spec.subset:
            ExperimentProblem.objects.bulk_create(
                [ExperimentProblem(experiment=experiment, problem_id=pk) for pk in chosen],
                batch_size=2000,
            )
        add_strategies(experiment, rows)
        record_submitted(experiment)
        experiment_id = experiment.pk
        transaction.on_commit(lambda: enqueue_experiment(experiment_id))
    return experiment


def add_strategies(experiment: Experiment, rows: Sequence[StrategySpec], *,
                   start: int = 0) -> None:
    """Store strategy rows (already ``for_experiment``-checked) at positions from ``start``,
    each pointing at the pool of its recipe, created on first use."""
    n_samples, max_new_tokens = experiment.n_samples, experiment.max_new_tokens
    for position, row in enumerate(rows, start=start):
        recipe = row.recipe(experiment.model_name, n_samples, max_new_tokens, experiment.seed)
        test_pool = ensure_pool(generated_tests_recipe(
            model=experiment.model_name, max_new_tokens=max_new_tokens, seed=experiment.seed
        )) if row.uses_generated_tests else None
        Strategy.objects.create(
            experiment=experiment,
            position=position,
            label=row.label or row.default_label(),
            prompt_scheme=row.prompt_scheme,
            prompt_config=dict(row.prompt_config),
            # A beam row's sampling settings do not apply: store the pool's.
            temperature=recipe.decoding.temperature,
            top_p=recipe.decoding.top_p,
            top_k=recipe.decoding.top_k,
            sampling={} if row.is_beam else dict(row.sampling),
            selector=row.selector,
            selector_config=dict(row.selector_config),
            n=recipe.pool_size(n_samples),
            pool=ensure_pool(recipe),
            test_pool=test_pool,
            test_n=row.test_pool_size(),
        )


def chunk_size(demanded: Sequence[tuple[SamplePool, int]]) -> int:
    """Problems per generation task for these pools of one model (those not generated in
    ranges, ``is_ranged``): ``STRATLAB_CHUNK_SIZE``, fewer when one problem's samples over
    all the pools fill more than a batch (``STRATLAB_MAX_BATCH_ROWS``), so a task's work
    stays about one batch or a chunk."""
    rows = sum(1 if pool.recipe.is_greedy else n for pool, n in demanded)
    per_batch = max(1, settings.STRATLAB_MAX_BATCH_ROWS // max(1, rows))
    return max(1, min(settings.STRATLAB_CHUNK_SIZE, per_batch))


def problem_chunks(experiment: Experiment, size: int) -> list[list[int]]:
    ids = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def model_choices() -> list[tuple[str, str]]:
    """(name, label) of every model the workers can load, from the torch-free catalogue."""
    return catalogue_choices(settings.STRATLAB_EXTRA_MODELS)


def range_width() -> int:
    """Sample indices per range of a pool generated in ranges (``STRATLAB_CHUNK_SAMPLES``)."""
    return int(settings.STRATLAB_CHUNK_SAMPLES)


def is_ranged(pool: SamplePool, n: int) -> bool:
    """Whether the pool's N samples of a problem are generated a range of indices per task:
    a batchable sampled pool (its samples depend on seed and index only) with N above
    ``range_width``. Greedy pools need one sample; a pool that is not batchable
    (multi-call schemes, beam and adaptive decoders) draws a problem's samples in one run,
    so its chunks keep whole problems."""
    recipe = pool.recipe
    return recipe.batchable and not recipe.is_greedy and n > range_width()


def sample_ranges(n: int, width: int) -> list[tuple[int, int]]:
    """``[first, last)`` of each range of ``width`` indices that N samples make.

    >>> sample_ranges(2_500, 1024)
    [(0, 1024), (1024, 2048), (2048, 2500)]
    """
    return [(first, min(first + width, n)) for first in range(0, n, width)]


def generation_chunks(experiment: Experiment) -> list[chunks.Chunk]:
    """The experiment's generation chunks: one per (model, slice of problems), covering
    every pool of that model, so that the pools' samples share the engine's batches;
    then, for a pool generated in ranges (``is_ranged``), one per (pool, problem, range
    of sample indices), problem by problem. The reconciler (``recovery``) rebuilds the
    same list to find what is missing."""
    demands = pool_demands(experiment)
    pools = SamplePool.objects.in_bulk(list(demands))
    by_model: dict[str, list[list[int]]] = {}
    ranged: list[tuple[int, int]] = []
    for pool_id, n in demands.items():
        if is_ranged(pools[pool_id], n):
            ranged.append((pool_id, n))
        else:
            by_model.setdefault(pools[pool_id].model_name, []).append([pool_id, n])
    out = []
    for demanded in by_model.values():
        size = chunk_size([(pools[pool_id], n) for pool_id, n in demanded])
        out += [chunks.Chunk.generate(demanded, problems)
                for problems in problem_chunks(experiment, size)]
    if ranged:
        for problem_id in experiment.problems.order_by("index").values_list("pk", flat=True):
            out += [chunks.Chunk.generate([[pool_id, n]], [problem_id], samples)
                    for pool_id, n in ranged for samples in sample_ranges(n, range_width())]
    return out


def enqueue_experiment(experiment_id: int) -> None:
    """Send the experiment's generation chunks (``generation_chunks``), each recorded in
    its ``ChunkAttempt`` row with a fresh budget of attempts."""
    experiment = Experiment.objects.get(pk=experiment_id)
    try:
        chunks.send(experiment_id, generation_chunks(experiment), timezone.now(), fresh=True)
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


def progress(experiment: Experiment) -> list[dict[str, object]]:
    """Per-stage progress: generate, verify, select/metrics, each with done/total, from
    the stored counters (``tallies``): a row per (pool, problem), never every sample."""
    counts = experiment_counts(experiment, verifier_for(experiment))
    results_expected = experiment.strategies.count() * experiment.problems.count()
    selected = experiment.strategies.aggregate(c=Count("results"))["c"] or 0
    stages = [
        ("generate", "Generate", counts.generated, counts.expected),
        ("verify", "Verify", counts.verified, counts.expected),
        ("select", "Select and measure", selected, results_expected),
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
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if experiment.metrics_claimed_at is not None or experiment.is_done:
        return False
    # The counters are a necessary condition, read without a scan after every slice;
    # once they hold, the rows themselves are checked (``tallies``: a tally counts every
    # index of a shared pool, the experiment reads the first n).
    if not experiment_counts(experiment, verifier_for(experiment)).is_verified:
        return False
    totals = generation_totals(experiment)
    if not totals.is_complete:
        return False
    samples = experiment_samples(experiment)
    verified = Verdict.objects.filter(
        sample__in=samples, verifier=verifier_for(experiment)
    ).count()
    if verified < totals.expected:
        return False
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
