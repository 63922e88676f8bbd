"""Every state change of an experiment goes through these functions.

They take plain arguments (ids, dataclasses), never a request. Transitions are
conditional UPDATEs that tell the caller whether it won, so two deliveries of
the same task cannot both act on the same transition.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from strategies import registry
from strategies.config import config_hash, pool_key
from strategies.sampling import DecodingConfig
from webapp.datasets.models import Dataset, Problem
from webapp.experiments.models import Experiment, Sample, SamplePool, Strategy, Verdict
from webapp.teams.models import Team

logger = logging.getLogger(__name__)

MAX_SAMPLES = 256
DEFAULT_K_VALUES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class StrategySpec:
    """One strategy row: how candidates are prompted and sampled, and how one is selected.

    ``sampling`` holds further ``DecodingConfig`` fields (min-p, top-H, EAD, ...);
    ``selector_config`` and ``prompt_config`` the fields of the registered
    selector's and prompting scheme's config classes.
    """

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    selector: str = "first"
    prompt_scheme: str = "direct"
    label: str = ""
    sampling: Mapping[str, Any] = field(default_factory=dict)
    selector_config: Mapping[str, Any] = field(default_factory=dict)
    prompt_config: Mapping[str, Any] = field(default_factory=dict)

    def decoding(self, max_new_tokens: int) -> DecodingConfig:
        return DecodingConfig(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=max_new_tokens,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in self.sampling.items()},
        )

    def pool_size(self, n_samples: int, max_new_tokens: int) -> int:
        """Samples per problem this strategy reads: 1 for greedy decoding; for
        refinement at most its N x (iterations + 1) responses."""
        if self.decoding(max_new_tokens).is_greedy:
            return 1
        if self.prompt_scheme == "refine":
            config = registry.get("refine").config_class(**self.prompt_config)
            return min(n_samples, config.n * (config.iterations + 1))
        return n_samples

    def pool_scheme(self) -> str:
        """The prompt scheme as the pool key sees it: its name, plus its config if set."""
        if not self.prompt_config:
            return self.prompt_scheme
        return f"{self.prompt_scheme}:{config_hash(dict(self.prompt_config))[:16]}"

    def default_label(self) -> str:
        if self.temperature == 0 and not self.sampling.get("temperature_mix"):
            sampling = "greedy"
        else:
            sampling = f"T={self.temperature:g}"
            if self.top_p < 1:
                sampling += f", top-p {self.top_p:g}"
            if self.top_k:
                sampling += f", top-k {self.top_k}"
            for name, value in self.sampling.items():
                sampling += f", {name.replace('_', ' ')} {_short(value)}"
        scheme = "" if self.prompt_scheme == "direct" else f"{self.prompt_scheme}, "
        return f"{scheme}{sampling} + {self.selector.replace('_', ' ')}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_short(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    model_name: str
    dataset: Dataset
    n_samples: int
    max_new_tokens: int
    seed: int
    strategies: Sequence[StrategySpec] = field(default_factory=tuple)
    verifier: str = "math"
    verifier_config: Mapping[str, Any] = field(default_factory=dict)
    self_eval: bool = False


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
) -> SamplePool:
    """The pool for exactly these generation inputs, created on first use.

    ``prompt_scheme`` is the scheme's pool name (``StrategySpec.pool_scheme``), which
    carries a hash of its config when it has one.
    """
    key = pool_key(model_name, prompt_scheme, decoding, seed)
    pool, _ = SamplePool.objects.get_or_create(
        key=key,
        defaults={
            "model_name": model_name,
            "prompt_scheme": prompt_scheme,
            "prompt_config": dict(prompt_config or {}),
            "decoding": decoding.key_fields(),
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
        for position, row in enumerate(spec.strategies):
            decoding = row.decoding(spec.max_new_tokens)
            pool = ensure_pool(
                model_name=spec.model_name,
                prompt_scheme=row.pool_scheme(),
                decoding=decoding,
                seed=spec.seed,
                prompt_config=row.prompt_config,
            )
            Strategy.objects.create(
                experiment=experiment,
                position=position,
                label=row.label or row.default_label(),
                prompt_scheme=row.prompt_scheme,
                prompt_config=dict(row.prompt_config),
                temperature=row.temperature,
                top_p=row.top_p,
                top_k=row.top_k,
                sampling=dict(row.sampling),
                selector=row.selector,
                selector_config=dict(row.selector_config),
                n=row.pool_size(spec.n_samples, spec.max_new_tokens),
                pool=pool,
            )
        experiment_id = experiment.pk
        transaction.on_commit(lambda: enqueue_experiment(experiment_id))
    return experiment


def pool_demands(experiment: Experiment) -> dict[int, int]:
    """Samples per problem each pool must hold for this experiment: {pool id: n}."""
    demands: dict[int, int] = {}
    for pool_id, n in experiment.strategies.values_list("pool_id", "n"):
        demands[pool_id] = max(demands.get(pool_id, 0), n)
    return demands


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
    """Send one generation task per (pool, slice of problems)."""
    from kombu.exceptions import OperationalError

    from workers import tasks

    experiment = Experiment.objects.get(pk=experiment_id)
    chunks = problem_chunks(experiment, settings.STRATLAB_CHUNK_SIZE)
    try:
        for pool_id, n in pool_demands(experiment).items():
            for chunk in chunks:
                tasks.generate_chunk.delay(experiment_id, pool_id, chunk, n)
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


def problems_missing_samples(pool_id: int, problem_ids: Sequence[int], n: int) -> list[Problem]:
    """Problems of the slice whose pool holds fewer than ``n`` samples (indices 0..n-1)."""
    counts = dict(
        Sample.objects.filter(pool_id=pool_id, problem_id__in=problem_ids, index__lt=n)
        .values("problem_id")
        .annotate(c=Count("id"))
        .values_list("problem_id", "c")
    )
    missing = [pid for pid in problem_ids if counts.get(pid, 0) < n]
    return list(Problem.objects.filter(pk__in=missing).order_by("index"))


def problems_needing_work(
    pool_id: int, problem_ids: Sequence[int], n: int, *, scores: bool
) -> list[Problem]:
    """Problems lacking samples, or (with ``scores``) lacking self-evaluation scores."""
    missing = {p.pk: p for p in problems_missing_samples(pool_id, problem_ids, n)}
    if scores:
        from webapp.experiments.verification import SELF_EVAL_VERIFIER

        scored = dict(
            Verdict.objects.filter(
                sample__pool_id=pool_id, sample__problem_id__in=problem_ids,
                sample__index__lt=n, verifier=SELF_EVAL_VERIFIER,
            )
            .values("sample__problem_id")
            .annotate(c=Count("id"))
            .values_list("sample__problem_id", "c")
        )
        for problem in Problem.objects.filter(pk__in=problem_ids):
            if scored.get(problem.pk, 0) < n:
                missing.setdefault(problem.pk, problem)
    return sorted(missing.values(), key=lambda p: p.index)


def samples_without_scores(pool_id: int, problem_id: int, n: int) -> list[tuple[int, str]]:
    """(sample id, text) of the problem's first ``n`` samples without a self-eval score."""
    from webapp.experiments.verification import SELF_EVAL_VERIFIER

    return list(
        Sample.objects.filter(pool_id=pool_id, problem_id=problem_id, index__lt=n)
        .exclude(verdicts__verifier=SELF_EVAL_VERIFIER)
        .order_by("index")
        .values_list("pk", "text")
    )


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


def record_samples(pool_id: int, problem_id: int, records: Sequence[SampleRecord]) -> int:
    """Store generated samples; an index already stored is left untouched.

    Returns how many rows were new. The unique (pool, problem, index) key is what
    makes a redelivered generation task harmless.
    """
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
    return Sample.objects.filter(pool_id=pool_id, problem_id=problem_id).count() - before


def expected_counts(experiment: Experiment) -> dict[str, int]:
    problems = experiment.dataset.problems.count()
    samples = sum(pool_demands(experiment).values()) * problems
    return {
        "samples": samples,
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
    """True (once) when every expected sample of the experiment has its verdict."""
    from webapp.experiments.verification import verifier_for

    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if experiment.metrics_claimed_at is not None or experiment.is_done:
        return False
    expected = expected_counts(experiment)["samples"]
    samples = _experiment_samples(experiment)
    verified = Verdict.objects.filter(
        sample__in=samples, verifier=verifier_for(experiment)
    ).count()
    if verified < expected:
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
