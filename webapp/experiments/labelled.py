"""The figures with the team's human labels beside the automatic ones, what the labels
changed, and how well the labels agree with the automatic verifier (Cohen's kappa)."""

from __future__ import annotations

import math
from typing import Any

from strategies.metrics.stats import cohen_kappa
from webapp.experiments.models import Experiment, Verdict
from webapp.experiments.queries import Figure, metric_figures
from webapp.experiments.verification import verifier_for
from webapp.review.models import HumanLabel
from webapp.review.services import visible_samples_q

PASS, FAIL = HumanLabel.Outcome.PASS, HumanLabel.Outcome.FAIL


def label_agreement(experiment: Experiment) -> dict[str, Any]:
    """The team's labels on the candidates the experiment reads against the automatic
    verdicts: a 2x2 table (rows: human pass, fail; columns: verifier pass, fail; an
    execution error counts as a fail), Cohen's kappa over it (None when it has no
    judged label or is undefined), and the labels on candidates without a verdict."""
    labels = list(HumanLabel.objects.filter(
        visible_samples_q(experiment, "sample__"), experiment.problem_q("sample__problem"),
        team_id=experiment.team_id,
    ).values_list("sample_id", "outcome"))
    verdicts = dict(Verdict.objects.filter(
        sample_id__in=[pk for pk, _ in labels], verifier=verifier_for(experiment),
    ).values_list("sample_id", "outcome"))
    table = [[0, 0], [0, 0]]
    unjudged = {PASS: 0, FAIL: 0}
    for sample_id, outcome in labels:
        automatic = verdicts.get(sample_id)
        if automatic in (None, Verdict.Outcome.UNJUDGED):
            unjudged[outcome] += 1
            continue
        table[0 if outcome == PASS else 1][0 if automatic == Verdict.Outcome.PASS else 1] += 1
    judged = sum(map(sum, table))
    kappa = cohen_kappa(table) if judged else None
    return {
        "total": len(labels),
        "judged": judged,
        "table": table,
        "agree": table[0][0] + table[1][1],
        "fail_to_pass": table[0][1],
        "pass_to_fail": table[1][0],
        "unjudged_pass": unjudged[PASS],
        "unjudged_fail": unjudged[FAIL],
        "kappa": None if kappa is None or math.isnan(kappa) else kappa,
    }


def _delta(automatic: Figure, labelled: Figure) -> float | None:
    if automatic.value is None or labelled.value is None:
        return None
    return labelled.value - automatic.value


def labelled_figures(experiment: Experiment) -> dict[str, Any]:
    """Per strategy, selected accuracy, pass@1 and coverage (pass@k at the largest k the
    strategy reaches) automatic and with labels, with their differences; whether the
    figures with labels are being recomputed; and the labels' agreement."""
    automatic = metric_figures(experiment)
    labelled = metric_figures(experiment, labelled=True)
    rows = []
    for strategy in experiment.strategies.all():
        auto, lab = automatic.get(strategy.pk, {}), labelled.get(strategy.pk, {})
        top = max((k for k in experiment.k_values if k <= strategy.n), default=1)
        figures = []
        for name, k, title in (("selected_accuracy", 0, "Selected accuracy"),
                               ("pass_at_k", 1, "pass@1"),
                               ("pass_at_k", top, f"pass@{top}")):
            if (name, k) == ("pass_at_k", top) and top == 1:
                continue
            a, b = auto.get((name, k), Figure(None)), lab.get((name, k), Figure(None))
            figures.append({"title": title, "automatic": a, "labelled": b,
                            "delta": _delta(a, b)})
        rows.append({"strategy": strategy, "figures": figures})
    return {
        "pending": experiment.is_labelling_pending,
        "has_figures": bool(labelled),
        "rows": rows,
        "agreement": label_agreement(experiment),
    }
