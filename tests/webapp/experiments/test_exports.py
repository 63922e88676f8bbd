"""Exports of samples, per-problem results and metrics as CSV, JSON and JSONL: contents,
the CSV-injection rule, file names, and memory that stays flat as samples grow."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from typing import Any

import pytest

from strategies.types import Candidate
from tests.factories import make_experiment, make_team
from tests.webapp.experiments import review_data
from webapp.experiments.export_formats import content_disposition, csv_text
from webapp.experiments.exports import METRIC_COLUMNS, PROBLEM_COLUMNS, SAMPLE_COLUMNS, export
from webapp.experiments.models import Experiment, Metric, Sample
from webapp.experiments.pools import record_samples
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import record_verdicts
from webapp.review.models import HumanLabel
from webapp.review.services import set_label

pytestmark = pytest.mark.django_db

MANIFEST = {"stratlab": "abc123", "python": "3.11.9", "dataset_sha256": "f" * 64}


def body(experiment: Experiment, what: str, fmt: str) -> str:
    return b"".join(export(experiment, what, fmt).chunks).decode()


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def experiment(team: Any, owner: Any) -> Experiment:
    """The review experiment (5 problems; pool A greedy, pool B of 4 read by majority and
    first), a manifest, and the team's label on problem 3's greedy candidate."""
    built = review_data.build(team)
    Experiment.objects.filter(pk=built.pk).update(manifest=MANIFEST)
    built.refresh_from_db()
    greedy, _, _ = review_data.strategies(built)
    set_label(owner, built, review_data.sample(built, greedy, 3, 0), outcome="fail",
              reason="=HYPERLINK(\"http://evil\")", answer="-5")
    return built


def test_it_exports_every_candidate_with_verdict_label_and_selections(
        experiment: Experiment) -> None:
    rows = csv_rows(body(experiment, "samples", "csv"))
    assert list(rows[0]) == [name for name, _ in SAMPLE_COLUMNS]
    # 5 problems x (1 greedy + 4 sampled), in problem order, pool A before pool B.
    assert len(rows) == 25
    assert [(r["problem_index"], r["pool"], r["sample_index"]) for r in rows[:5]] == [
        ("0", "A", "0"), ("0", "B", "0"), ("0", "B", "1"), ("0", "B", "2"), ("0", "B", "3")]
    problem3 = [r for r in rows if r["problem_index"] == "3"]
    assert [(r["pool"], r["answer"], r["verdict"]) for r in problem3] == [
        ("A", "5", "pass"), ("B", "7", "fail"), ("B", "5", "pass"), ("B", "5", "pass"),
        ("B", "1", "fail")]
    # Majority chose the first 5 (index 1), first chose index 0; greedy its only one.
    assert [r["selected_by"] for r in problem3] == [
        "greedy + first", "T=0.7 + first", "T=0.7 + majority", "", ""]
    labelled = problem3[0]
    assert labelled["label"] == "fail"
    assert labelled["label_answer"] == "'-5"  # text, so the formula rule applies
    assert labelled["label_reason"] == "'=HYPERLINK(\"http://evil\")"
    assert all(r["label"] == "" for r in rows if r is not labelled)
    # Numbers stay numbers: a negative log-prob is not prefixed.
    assert {r["logprob_sum"] for r in rows} == {"-3.0"}
    assert {(r["prompt_tokens"], r["generated_tokens"], r["seconds"]) for r in rows} == {
        ("10", "6", "0.1")}
    assert rows[0]["text"] == "The answer is 2." and rows[0]["finish_reason"] == "eos"
    assert {r["problem_name"] for r in rows} == {"#0", "#1", "#2", "#3", "#4"}


def test_another_teams_label_on_the_same_candidate_stays_out(experiment: Experiment) -> None:
    greedy, _, _ = review_data.strategies(experiment)
    other = make_team("Other")
    HumanLabel.objects.create(team=other, sample=review_data.sample(experiment, greedy, 0, 0),
                              outcome="fail", reason="theirs")
    rows = csv_rows(body(experiment, "samples", "csv"))
    assert [r["label"] for r in rows if r["label"]] == ["fail"]
    assert "theirs" not in body(experiment, "samples", "json")


def test_csv_cells_that_start_a_formula_get_a_quote_and_numbers_do_not(
        experiment: Experiment) -> None:
    hostile = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", "plain = text"]
    greedy, _, _ = review_data.strategies(experiment)
    for index, text in enumerate(["\rCR", "+SUM(A1)", "-2+3", "@cmd", "\tTAB"]):
        Sample.objects.filter(pk=review_data.sample(experiment, greedy, index, 0).pk).update(
            text=text, logprob_sum=-1.25)
    rows = csv_rows(body(experiment, "samples", "csv"))
    texts = {(r["problem_index"], r["pool"]): r for r in rows if r["pool"] == "A"}
    assert texts[("0", "A")]["text"] == "'\rCR"
    assert texts[("0", "A")]["logprob_sum"] == "-1.25"
    assert texts[("1", "A")]["text"] == "'+SUM(A1)"
    assert texts[("2", "A")]["text"] == "'-2+3"
    assert texts[("3", "A")]["text"] == "'@cmd"
    assert texts[("4", "A")]["text"] == "'\tTAB"
    assert [csv_text(t) for t in hostile] == [
        "'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tTAB", "'\rCR", "plain = text"]
    # JSON keeps the text as it is.
    rows_json = json.loads(body(experiment, "samples", "json"))["rows"]
    assert rows_json[0]["text"] == "\rCR" and rows_json[0]["logprob_sum"] == -1.25
    # A strategy label is text too.
    experiment.strategies.filter(position=1).update(label="-majority")
    metrics = csv_rows(body(experiment, "metrics", "csv"))
    assert {r["strategy"] for r in metrics if r["strategy_position"] == "1"} == {"'-majority"}


def test_it_exports_per_problem_results(experiment: Experiment) -> None:
    rows = csv_rows(body(experiment, "problems", "csv"))
    assert list(rows[0]) == [name for name, _ in PROBLEM_COLUMNS]
    assert len(rows) == 15
    problem3 = {r["strategy"]: r for r in rows if r["problem_index"] == "3"}
    assert problem3["T=0.7 + majority"]["selected_answer"] == "5"
    assert problem3["T=0.7 + majority"]["correct"] == "1.0"
    assert problem3["T=0.7 + first"]["selected_answer"] == "7"
    assert problem3["T=0.7 + first"]["correct"] == "0.0"
    assert problem3["T=0.7 + first"]["oracle"] == "true"
    assert problem3["T=0.7 + first"]["n_correct"] == "2"
    assert problem3["T=0.7 + first"]["reference"] == "5"
    assert [r["oracle"] for r in rows if r["problem_index"] == "1"] == ["false"] * 3


def test_it_exports_metrics_with_intervals_automatic_and_labelled(
        experiment: Experiment) -> None:
    greedy, _, _ = review_data.strategies(experiment)
    Metric.objects.create(strategy=greedy, name="pass_at_k", k=1, labelled=True, value=0.2,
                          ci_low=0.0, ci_high=0.6)
    Metric.objects.filter(strategy=greedy, name="tokens_per_second").update(
        value=float("inf"))
    rows = csv_rows(body(experiment, "metrics", "csv"))
    assert list(rows[0]) == [name for name, _ in METRIC_COLUMNS]
    stored = Metric.objects.filter(strategy__experiment=experiment).count()
    assert len(rows) == stored
    auto = next(r for r in rows if r["strategy_position"] == "0" and r["name"] == "pass_at_k"
                and r["labelled"] == "false")
    assert (auto["k"], auto["value"], auto["low"], auto["high"]) == ("1", "0.4", "0.0", "0.8")
    assert rows[-1] == {"strategy_position": "0", "strategy": "greedy + first",
                        "name": "pass_at_k", "k": "1", "value": "0.2", "low": "0.0",
                        "high": "0.6", "labelled": "true"}
    speed = next(r for r in rows if r["name"] == "tokens_per_second")
    assert speed["value"] == ""
    doc = json.loads(body(experiment, "metrics", "json"))  # strict: no Infinity
    assert len(doc["rows"]) == stored
    assert next(r for r in doc["rows"] if r["name"] == "tokens_per_second")["value"] is None


@pytest.mark.parametrize("what", ["samples", "problems", "metrics"])
def test_json_and_jsonl_carry_the_experiment_and_its_manifest(
        experiment: Experiment, what: str) -> None:
    doc = json.loads(body(experiment, what, "json"))
    assert set(doc) == {"experiment", "what", "rows"} and doc["what"] == what
    head = doc["experiment"]
    assert head["id"] == experiment.pk and head["manifest"] == MANIFEST
    assert [s["label"] for s in head["strategies"]] == [
        "greedy + first", "T=0.7 + majority", "T=0.7 + first"]
    assert [s["pool"] for s in head["strategies"]] == ["A", "B", "B"]
    lines = [json.loads(line) for line in body(experiment, what, "jsonl").splitlines()]
    assert lines[0]["kind"] == "experiment" and lines[0]["what"] == what
    assert lines[0]["experiment"]["manifest"] == MANIFEST
    kind = {"samples": "sample", "problems": "problem", "metrics": "metric"}[what]
    assert {line["kind"] for line in lines[1:]} == {kind}
    # The same rows in both, and as many as in the CSV.
    assert [{k: v for k, v in line.items() if k != "kind"} for line in lines[1:]] == doc["rows"]
    assert len(doc["rows"]) == len(csv_rows(body(experiment, what, "csv")))


def test_unknown_exports_are_refused_by_name(experiment: Experiment) -> None:
    with pytest.raises(ValueError, match="Unknown export 'everything': choose one of samples"):
        export(experiment, "everything", "csv")
    with pytest.raises(ValueError, match="Unknown format 'xlsx': choose one of csv"):
        export(experiment, "samples", "xlsx")


def test_file_names_are_safe_for_a_hostile_experiment_name(team: Any) -> None:
    hostile = make_experiment(
        team, name='..\\../etc/passwd"; filename=evil.exe\r\nSet-Cookie: x=1 résumé 日本')
    out = export(hostile, "samples", "csv")
    assert out.filename == (
        f"etcpasswd-filenameevilexe-set-cookie-x1-résumé-日本-{hostile.pk}-samples.csv")
    header = out.content_disposition
    assert header == (
        f'attachment; filename="etcpasswd-filenameevilexe-set-cookie-x1-resume-{hostile.pk}'
        f'-samples.csv"; filename*=UTF-8\'\'etcpasswd-filenameevilexe-set-cookie-x1-r%C3%A9sum'
        f'%C3%A9-%E6%97%A5%E6%9C%AC-{hostile.pk}-samples.csv')
    assert not set('\r\n\\/') & set(header)
    empty = make_experiment(team, name="!!!")
    assert export(empty, "metrics", "jsonl").filename == f"experiment-{empty.pk}-metrics.jsonl"
    assert content_disposition("run-3-samples.csv") == 'attachment; filename="run-3-samples.csv"'


# --- Memory -----------------------------------------------------------------------------


def big_experiment(team: Any, problems: int, n: int = 100) -> Experiment:
    """``problems`` x ``n`` samples of 200 characters in one pool, verified."""
    experiment = make_experiment(
        team, prompts=[(f"What is {i} + 1?", str(i + 1)) for i in range(problems)], n=n,
        strategies=[StrategySpec(temperature=0.7, selector="first")], seed=problems)
    pool_id = experiment.strategies.get().pool_id
    ids = []
    for problem in experiment.problems.order_by("index"):
        record_samples(pool_id, problem.pk, {
            i: Candidate(text=f"Step by step {'.' * 160} The answer is {problem.index + i % 2}.",
                         prompt_tokens=12, generated_tokens=50, logprob_sum=-20.5,
                         finish_reason="eos", seconds=0.2)
            for i in range(n)
        }, requested=n)
        ids.append(problem.pk)
    record_verdicts(experiment, pool_id, ids)
    return experiment


def peak_bytes(chunks: Any) -> tuple[int, int]:
    """The traced peak while the chunks are consumed, and how many bytes they held."""
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in chunks)
        return tracemalloc.get_traced_memory()[1], size
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_samples_grow_tenfold(team: Any) -> None:
    small, large = big_experiment(team, 20), big_experiment(team, 200)
    assert Sample.objects.filter(problem__dataset=large.dataset).count() == 20_000
    for fmt in ("csv", "jsonl"):
        small_peak, small_size = peak_bytes(export(small, "samples", fmt).chunks)
        large_peak, large_size = peak_bytes(export(large, "samples", fmt).chunks)
        assert large_size > 9 * small_size
        # Ten times the rows, not ten times the memory: pages of about 2,000 samples.
        assert large_peak < 1.5 * small_peak, (fmt, small_peak, large_peak)
    # The same data loaded whole takes memory in proportion (what the test guards).
    tracemalloc.start()
    rows = list(Sample.objects.filter(problem__dataset=large.dataset).values_list("text"))
    whole = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rows) == 20_000 and whole > 3 * large_peak
