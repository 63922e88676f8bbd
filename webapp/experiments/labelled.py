"""The figures with the team's human labels beside the automatic ones, what the labels
changed, the paired comparisons with the labels, and how well the labels agree with the
automatic verifier (Cohen's kappa). Everything here reads stored rows: the recompute
after a label change (``results.compute_labelled_results``) writes them."""

from __future__ import annotations

import math
from typing import Any

from strategies.metrics.stats import cohen_kappa
from webapp.experiments.models import Experiment, Verdict
from webapp.experiments.queries import Figure, comparisons, metric_figures
from webapp.experiments.verification import verifier_for
from webapp.review.models import HumanLabel
from webapp.review.services import label_verdict, visible_samples_q

PASS, FAIL = HumanLabel.Outcome.PASS, HumanLabel.Outcome.FAIL


def label_agreement(experiment: Experiment) -> dict[str, Any]:
    """The team's labels on the candidates the experiment reads against the automatic
    verdicts: a 2x2 table (rows: human pass, fail; columns: verifier pass, fail; an
    execution error counts as a fail), Cohen's kappa over it (None when it has no
    judged label or is undefined), the labels on candidates without a verdict, and the
    "answer is" labels (each counts as the pass or fail its answer gets from this
    experiment's verifier; ``undecided`` where the verifier cannot judge one)."""
    labels = list(HumanLabel.objects.filter(
        visible_samples_q(experiment, "sample__"), experiment.problem_q("sample__problem"),
        team_id=experiment.team_id,
    ).values_list("sample_id", "outcome", "answer", "sample__problem__answer"))
    verdicts = dict(Verdict.objects.filter(
        sample_id__in=[label[0] for label in labels], verifier=verifier_for(experiment),
    ).values_list("sample_id", "outcome"))
    table = [[0, 0], [0, 0]]
    unjudged = {PASS: 0, FAIL: 0}
    undecided = 0
    for sample_id, kind, answer, reference in labels:
        passes = label_verdict(experiment, kind, answer, reference)
        if passes is None:
            undecided += 1
            continue
        outcome = PASS if passes else FAIL
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
        "answers": sum(1 for label in labels if label[1] == HumanLabel.Outcome.ANSWER),
        "undecided": undecided,
        "kappa": None if kappa is None or math.isnan(kappa) else kappa,
    }


def _delta(automatic: Figure, labelled: Figure) -> float | None:
    if automatic.value is None or labelled.value is None:
        return None
    return labelled.value - automatic.value


def _figure_names(experiment: Experiment, n: int) -> list[tuple[str, int, str]]:
    """The figures shown automatic and with labels for a strategy reading ``n`` samples:
    selected accuracy, sel@k of its selector at each reported k, pass@1 and coverage
    (pass@k at the largest reported k)."""
    ks = [k for k in experiment.k_values if k <= n]
    top = max(ks, default=1)
    names = [("selected_accuracy", 0, "Selected accuracy")]
    if n > 1:
        names += [("sel_at_k", k, f"sel@{k}") for k in ks]
    names.append(("pass_at_k", 1, "pass@1"))
    if top > 1:
        names.append(("pass_at_k", top, f"pass@{top}"))
    return names


def labelled_figures(experiment: Experiment) -> dict[str, Any]:
    """Per strategy, selected accuracy, sel@k at each k, pass@1 and coverage automatic
    and with labels, with their differences; the paired comparisons with labels (stored
    with those figures); whether the figures with labels are being recomputed; and the
    labels' agreement."""
    automatic = metric_figures(experiment)
    labelled = metric_figures(experiment, labelled=True)
    rows = []
    for strategy in experiment.strategies.all():
        auto, lab = automatic.get(strategy.pk, {}), labelled.get(strategy.pk, {})
        figures = []
        for name, k, title in _figure_names(experiment, strategy.n):
            a, b = auto.get((name, k), Figure(None)), lab.get((name, k), Figure(None))
            figures.append({"key": f"{name}-{k}", "title": title, "automatic": a,
                            "labelled": b, "delta": _delta(a, b)})
        rows.append({"strategy": strategy, "figures": figures})
    return {
        "pending": experiment.is_labelling_pending,
        "has_figures": bool(labelled),
        "rows": rows,
        "comparisons": comparisons(experiment, labelled=True),
        "agreement": label_agreement(experiment),
    }
