"""Verification: an extracted answer and a verdict for every sample.

Text verifiers (math, exact, regex, multiple choice) judge a sample against its
problem's reference answer; problems without one get the extracted answer and no
verdict. The model judge (``judge``) needs the model, so the generation task runs
it and stores its verdicts through ``record_judged``; it grades with the reference
when there is one and without it otherwise. Self-evaluation scores come from the
model and are stored beside them under their own verifier key. Every write of verdicts
recounts the tallies of the (pool, problem)s it touched in its transaction
(``tallies.counting_verdicts``), which progress and the metrics claim read.
"""

from __future__ import annotations

from collections.abc import Sequence

from strategies import registry
from strategies.config import config_hash
from strategies.verify.math import extract_answer
from strategies.verify.result import VerifierResult
from strategies.verify.stated import stated_answer_passes
from webapp.datasets.models import Dataset
from webapp.experiments.guard import unless_cancelled
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.experiments.pools import in_range
from webapp.experiments.tallies import counting_verdicts, pairs_of_samples

TEXT_VERIFIERS = ("math", "exact", "regex", "choice")
# Verifiers that run the model, on the gpu queue, inside generation.
MODEL_VERIFIERS = ("judge",)
# Verifiers that execute code: in the sandbox, on the cpu queue (``code_verification``).
CODE_VERIFIERS = ("unit_tests",)
NO_REFERENCE_VERIFIER = "extract"
SELF_EVAL_VERIFIER = "self_eval"


def scoring_verifier() -> str:
    """The verifier key under which model-computed scores (self-evaluation) are stored."""
    return SELF_EVAL_VERIFIER


def verifier_key(name: str, config: dict[str, object]) -> str:
    """The stored verifier key: its name, plus a hash of its config when it has one."""
    return f"{name}:{config_hash(config)[:16]}" if config else name


def verifier_for(experiment: Experiment) -> str:
    """The key of the verifier an experiment's samples are judged by."""
    if experiment.verifier in MODEL_VERIFIERS:
        return verifier_key(experiment.verifier, experiment.verifier_config)
    if experiment.dataset.kind == Dataset.Kind.OPEN:
        return NO_REFERENCE_VERIFIER
    return verifier_key(experiment.verifier, experiment.verifier_config)


def run_verifier(name: str, config: dict[str, object], text: str, reference: str) -> VerifierResult:
    """Apply a registered text verifier to one output."""
    if name not in TEXT_VERIFIERS:
        raise ValueError(f"{name!r} is not a text verifier; choose one of {TEXT_VERIFIERS}")
    entry = registry.get(name)
    return entry.function(text, reference, entry.config_class(**config))  # type: ignore[no-any-return]


def judge_stated_answer(experiment: Experiment, answer: str, reference: str) -> bool | None:
    """Whether an answer a reviewer states is right against the reference, by the
    experiment's verifier compared as it compares its own extraction; None where there
    is no reference or the verifier judges whole outputs (judge, unit tests)."""
    if verifier_for(experiment) == NO_REFERENCE_VERIFIER or not reference:
        return None
    return stated_answer_passes(experiment.verifier, experiment.verifier_config, answer,
                                reference)


def record_verdicts(experiment: Experiment, pool_id: int, problem_ids: Sequence[int],
                    samples: tuple[int, int] | None = None) -> int:
    """Judge every sample of the slice (of its sample indices ``[first, last)``, when
    ``samples`` is given) that has no verdict yet; returns how many were new (none are
    stored once the experiment is cancelled).

    A model-verifier experiment is judged during generation, and a code experiment in
    the sandbox (``workers.code_runs``), so nothing is left here for either.
    """
    if experiment.verifier in MODEL_VERIFIERS + CODE_VERIFIERS:
        return 0
    key = verifier_for(experiment)
    pending = (
        Sample.objects.filter(in_range(samples), pool_id=pool_id, problem_id__in=problem_ids)
        .exclude(verdicts__verifier=key)
        .select_related("problem")
    )
    verdicts = []
    for sample in pending:
        reference = sample.problem.answer
        if key == NO_REFERENCE_VERIFIER or not reference:
            answer, outcome, score = extract_answer(sample.text), Verdict.Outcome.UNJUDGED, None
        else:
            result = run_verifier(
                experiment.verifier, experiment.verifier_config, sample.text, reference
            )
            answer, score = result.answer, result.score
            outcome = _outcome(result.passed)
        verdicts.append(
            Verdict(sample=sample, verifier=key, answer=answer, outcome=outcome, score=score)
        )
    with unless_cancelled(experiment.pk) as is_open:
        if not is_open:
            return 0
        with counting_verdicts(key, [(pool_id, pk) for pk in problem_ids]):
            Verdict.objects.bulk_create(verdicts, ignore_conflicts=True)
    return len(verdicts)


def _outcome(passed: bool | None) -> str:
    return {True: Verdict.Outcome.PASS, False: Verdict.Outcome.FAIL}.get(
        passed, Verdict.Outcome.ERROR  # type: ignore[arg-type]
    )


def record_judged(key: str, judged: Sequence[tuple[int, str | None, VerifierResult]]) -> None:
    """Store model-judge verdicts: (sample id, extracted answer, ``VerifierResult``).

    No verdict of the judge (``passed`` None) is an error outcome; existing ones are kept.
    """
    with counting_verdicts(key, pairs_of_samples(sample_id for sample_id, _, _ in judged)):
        Verdict.objects.bulk_create(
            [
                Verdict(sample_id=sample_id, verifier=key, answer=answer,
                        outcome=_outcome(result.passed), score=result.score)
                for sample_id, answer, result in judged
            ],
            ignore_conflicts=True,
        )


def record_scores(sample_scores: Sequence[tuple[int, float]]) -> None:
    """Store self-evaluation scores (sample id, score); existing ones are kept."""
    pairs = pairs_of_samples(sample_id for sample_id, _ in sample_scores)
    with counting_verdicts(SELF_EVAL_VERIFIER, pairs):
        Verdict.objects.bulk_create(
            [
                Verdict(sample_id=sample_id, verifier=SELF_EVAL_VERIFIER, score=score,
                        outcome=Verdict.Outcome.UNJUDGED)
                for sample_id, score in sample_scores
            ],
            ignore_conflicts=True,
        )
