"""An experiment after submit: cancel it, delete it, amend it, or run it again changed.

Each change is a conditional UPDATE that says whether this call made it, like the
worker-side transitions in ``services``:

* **cancel**: queued or running -> cancelled. Tasks read the status between units of
  work (``services.is_active``): a queued task does nothing, generation stops at its
  next batch, the sandbox kills the program in flight (``workers.code_runs``), and
  every write of samples, verdicts and figures re-checks it in its own transaction
  (``guard.unless_cancelled``), so nothing is stored once the cancel is acknowledged.
* **delete**: cancels first, then removes the experiment with its strategies and
  results, and the sample pools no other experiment reads (with their samples).
* **amend**: a finished experiment gets more strategies or a larger N (16 -> 64) and
  is queued again: pools keep their samples and only the missing ones are generated
  (a pool's completion marker is per N), its figures are recomputed.
* **run again**: ``rerun_initial`` fills the new-experiment form from an experiment;
  unchanged rows name the same pools (same keys), so their samples are reused.

Callers check permissions first (``teams.services.require_role``, member or above,
after the team-scoped ``services.get_experiment_for_user``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from strategies.recipe import ADAPTIVE_DECODER, SAMPLE_DECODER
from strategies.sampling import DecodingConfig
from webapp.experiments.config_forms import config_fields
from webapp.experiments.manifest import record_submitted
from webapp.experiments.models import (
    Comparison,
    Experiment,
    Metric,
    ProblemResult,
    SamplePool,
    Strategy,
)
from webapp.experiments.services import (
    MAX_SAMPLES,
    TOO_MANY_SAMPLES,
    add_strategies,
    enqueue_experiment,
    k_values_for,
)
from webapp.experiments.specs import ExperimentSpec, StrategySpec

logger = logging.getLogger(__name__)

ACTIVE = (Experiment.Status.QUEUED, Experiment.Status.RUNNING)


class LifecycleError(ValueError):
    """A change the experiment's state does not allow; the message says why."""


# --- Cancel and delete ------------------------------------------------------------------


def cancel_experiment(experiment_id: int) -> bool:
    """Cancel a queued or running experiment; True when this call cancelled it."""
    won = Experiment.objects.filter(pk=experiment_id, status__in=ACTIVE).update(
        status=Experiment.Status.CANCELLED, finished=timezone.now()
    )
    if won:
        logger.info("experiment %s cancelled", experiment_id)
    return bool(won)


def delete_experiment(experiment_id: int) -> None:
    """Delete the experiment with its strategies, results and figures, and the sample
    pools (with their samples and verdicts) that no other experiment reads; a queued
    or running one is cancelled first, so its tasks stop writing."""
    cancel_experiment(experiment_id)
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if experiment is None:
            return
        rows = Strategy.objects.filter(experiment=experiment).values_list("pool_id",
                                                                            "test_pool_id")
        pool_ids = {pk for pair in rows for pk in pair if pk is not None}
        # Lock the pools, so that no submit starts reading one between the check and the
        # delete (it would wait, then find the pool gone and make a new one).
        list(SamplePool.objects.select_for_update().filter(pk__in=pool_ids).values("pk"))
        experiment.delete()
        unused = SamplePool.objects.filter(
            pk__in=pool_ids, strategies__isnull=True, test_strategies__isnull=True
        ).values_list("pk", flat=True)
        deleted = SamplePool.objects.filter(pk__in=list(unused)).delete()
    logger.info("experiment %s deleted (%s)", experiment_id, deleted[1])


# --- Amend ------------------------------------------------------------------------------


def amend_experiment(
    experiment_id: int, *, n_samples: int | None = None,
    strategies: Sequence[StrategySpec] = (),
) -> Experiment:
    """Add ``strategies`` to a finished experiment and/or grow its N to ``n_samples``,
    and queue it again: only the samples the pools lack are generated, then everything
    is verified where missing and the figures are recomputed. ``LifecycleError`` (a
    ``ValueError``) says what is not allowed."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    old_n = experiment.n_samples
    new_n = old_n if n_samples is None else int(n_samples)
    if experiment.status != Experiment.Status.FINISHED:
        raise LifecycleError(f"Only a finished experiment can be amended; this one is "
                             f"{experiment.get_status_display().lower()}.")
    if new_n < old_n:
        raise LifecycleError(f"N can only grow: this experiment has N = {old_n}, so "
                             f"{new_n} samples per problem would drop some.")
    if new_n > MAX_SAMPLES:
        raise LifecycleError(TOO_MANY_SAMPLES)
    if new_n == old_n and not strategies:
        raise LifecycleError("Nothing to change: give a larger N or add a strategy.")
    rows = [row.for_experiment(new_n, experiment.max_new_tokens) for row in strategies]
    ExperimentSpec(
        name=experiment.name, model_name=experiment.model_name, dataset=experiment.dataset,
        n_samples=new_n, max_new_tokens=experiment.max_new_tokens, seed=experiment.seed,
        strategies=rows, verifier=experiment.verifier,
        verifier_config=experiment.verifier_config, self_eval=experiment.self_eval,
    ).check_dataset_fit()
    existing = list(experiment.strategies.select_related("pool").order_by("position"))
    sizes = {}
    for strategy in existing:
        recipe = strategy.pool.recipe
        try:
            recipe.check(new_n)
        except ValueError as exc:
            raise LifecycleError(f"{strategy.label}: {exc}") from exc
        sizes[strategy.pk] = recipe.pool_size(new_n)
    with transaction.atomic():
        won = Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.FINISHED).update(
            status=Experiment.Status.QUEUED, n_samples=new_n,
            k_values=sorted(set(experiment.k_values) | set(k_values_for(new_n))),
            metrics_claimed_at=None, started=None, finished=None, error="",
        )
        if not won:
            raise LifecycleError("The experiment changed meanwhile (amended, cancelled or "
                                 "deleted by someone else); reload the page.")
        experiment.refresh_from_db()
        for strategy in existing:
            if sizes[strategy.pk] != strategy.n:
                Strategy.objects.filter(pk=strategy.pk).update(n=sizes[strategy.pk])
        start = existing[-1].position + 1 if existing else 0
        add_strategies(experiment, rows, start=start)
        # Stale figures go now: the page shows progress, then the new ones.
        ProblemResult.objects.filter(strategy__experiment=experiment).delete()
        Metric.objects.filter(strategy__experiment=experiment).delete()
        Comparison.objects.filter(strategy__experiment=experiment).delete()
        record_submitted(experiment, note={
            "amended": timezone.now().isoformat(timespec="seconds"),
            "n_samples": [old_n, new_n],
            "added_strategies": [s.label for s in
                                 experiment.strategies.filter(position__gte=start)],
        })
        transaction.on_commit(lambda: enqueue_experiment(experiment_id))
    logger.info("experiment %s amended: N %s -> %s, %d strategies added",
                experiment_id, old_n, new_n, len(rows))
    return experiment


# --- Run again with changes -------------------------------------------------------------

_BASIC = ("temperature", "top_p", "top_k")


def _form_value(value: Any) -> Any:
    """A stored config value as a form field shows it (tuples: "0.5, 1.2")."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return value


def strategy_initial(strategy: Strategy) -> dict[str, Any]:
    """A strategy as the initial values of a new-experiment form row
    (``forms.StrategyForm``): scheme, decoder, sampling, selector and their configs."""
    pool = strategy.pool
    decoder = str(pool.decoder.get("name") or SAMPLE_DECODER)
    initial: dict[str, Any] = {
        "prompt_scheme": strategy.prompt_scheme,
        "decoder": decoder,
        "selector": strategy.selector,
        "temperature": strategy.temperature,
        "top_p": strategy.top_p,
        "top_k": strategy.top_k,
    }
    sampling = {name: value for name, value in pool.decoding.items()
                if name in config_fields(DecodingConfig) and name not in _BASIC}
    sampling.update(strategy.sampling)
    initial.update({name: _form_value(value) for name, value in sampling.items()})
    initial.update({f"scheme__{k}": _form_value(v) for k, v in strategy.prompt_config.items()})
    initial.update({f"sel__{k}": _form_value(v) for k, v in strategy.selector_config.items()})
    group = "adapt" if decoder == ADAPTIVE_DECODER else "beam"
    initial.update({f"{group}__{k}": _form_value(v)
                    for k, v in (pool.decoder.get("config") or {}).items()})
    if isinstance(initial.get("beam__early_stopping"), bool):
        # The form offers "false", "true" and "never" for ``bool | Literal["never"]``.
        initial["beam__early_stopping"] = str(initial["beam__early_stopping"]).lower()
    return initial


def rerun_initial(experiment: Experiment) -> dict[str, Any]:
    """The new-experiment form's initial values for running ``experiment`` again: the
    experiment's fields (``ExperimentForm``, its dataset as a saved one) and, under
    ``"strategies"``, one dict per strategy row (``strategy_initial``)."""
    subset = dict(experiment.subset)
    initial: dict[str, Any] = {
        "team": experiment.team_id,
        "name": f"{experiment.name} (again)"[:200],
        "model_name": experiment.model_name,
        "dataset_source": "saved",
        "dataset": experiment.dataset_id,
        "subset_mode": subset.get("mode", "all"),
        "subset_k": subset.get("k"),
        "subset_seed": subset.get("seed", 0),
        "subset_ids": ", ".join(str(i) for i in subset.get("ids", [])),
        "n_samples": experiment.n_samples,
        "max_new_tokens": experiment.max_new_tokens,
        "seed": experiment.seed,
        "verifier": experiment.verifier,
        "self_eval": experiment.self_eval,
        **{f"verifier__{k}": _form_value(v) for k, v in experiment.verifier_config.items()},
    }
    initial["strategies"] = [
        strategy_initial(s) for s in experiment.strategies.select_related("pool")
        .order_by("position")
    ]
    return initial
