"""Code verification: what the sandbox must run for an experiment, and its results.

The web layer never executes code. It builds the program text (``strategies.verify.
code``) and the limits for each run; a cpu-queue task runs them in ``workers.sandbox``
and hands the outcomes back here to be stored. Three kinds of run:

* **calibration**: a problem's canonical solution, once, to set its time limit;
* **unit tests**: every solution sample against the problem's own tests (a verdict);
* **pass matrices**: every solution sample against the assertions the model wrote in
  the strategy's test pool (CodeT and B4; ALGORITHMS section 10).

Samples of a test pool are not solutions: their verdict (outcome "unjudged") records
the assertions extracted from them, so that every sample of an experiment has one.

A cpu-queue task crosses into this module once each way per slice: ``plan_slice``
hands it every program to run (a ``CodePlan``), and ``record_slice`` takes every
outcome back and stores it. The finer functions below are the plan's parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.db import transaction
from django.db.models import Q

from strategies import registry
from strategies.recipe import TEST_SCHEME
from strategies.types import Problem as ProblemView
from strategies.verify.code import (
    UnitTestConfig,
    check_program,
    extract_assertions,
    extract_program,
    program_answer,
)
from webapp.datasets.models import Dataset, Problem
from webapp.experiments.guard import unless_cancelled
from webapp.experiments.models import (
    Experiment,
    PassMatrix,
    Sample,
    SamplePool,
    Strategy,
    Verdict,
)
from webapp.experiments.pools import in_range, is_pool_problem_done, pool_demands
from webapp.experiments.tallies import counting_verdicts, pairs_of_samples
from webapp.experiments.verification import verifier_for

UNIT_TESTS = "unit_tests"
#: Per-assertion time limit in a pass-matrix run, and the cap on a whole run.
CHECK_SECONDS = 1.0
MATRIX_MAX_SECONDS = 20.0
DETAIL_CHARS = 2000


@dataclass(frozen=True)
class CodeRun:
    """One program for the sandbox: the sample it judges (None for a calibration run)."""

    problem_id: int
    sample_id: int | None
    source: str
    wall_seconds: float
    memory_bytes: int
    answer: str | None = None


@dataclass(frozen=True)
class MatrixJob:
    """The solutions x generated tests of one problem for one (solution, test) pool pair."""

    solution_pool_id: int
    test_pool_id: int
    problem_id: int
    n_solutions: int
    n_test_samples: int
    programs: tuple[str, ...]
    tests: tuple[str, ...]
    columns: tuple[int, ...]
    column_samples: tuple[int, ...]
    memory_bytes: int

    @property
    def wall_seconds(self) -> float:
        return min(MATRIX_MAX_SECONDS, 2.0 + CHECK_SECONDS * len(self.tests))


class Outcome(Protocol):
    """What the sandbox reports of one program (``workers.sandbox.Outcome`` is one)."""

    @property
    def status(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def checks(self) -> Sequence[bool]: ...


@dataclass(frozen=True)
class CodePlan:
    """Every program a slice of a code experiment needs run, built in one call.

    Unit-test runs of a problem that is calibrated in the same slice get their time
    limit from the calibration: ``config.wall_seconds(canonical seconds)``.
    """

    calibrations: tuple[CodeRun, ...]
    unit_tests: tuple[CodeRun, ...]
    matrices: tuple[MatrixJob, ...]
    config: UnitTestConfig
    verifier: str
    # Generated-test pools of the slice: (pool id, assertions kept per sample); their
    # samples get their extracted assertions as verdicts, with nothing to run.
    test_pools: tuple[tuple[int, int], ...]
    problem_ids: tuple[int, ...]
    # Whose slice: ``record_slice`` stores nothing once that experiment is cancelled.
    experiment_id: int
    # The slice's sample indices ``[first, last)`` (a pool verified a range at a time).
    samples: tuple[int, int] | None = None


@dataclass(frozen=True)
class CodeOutcomes:
    """The sandbox's outcomes for a ``CodePlan``, in the plan's order; one list of
    outcomes per matrix job (empty when the job has no tests)."""

    calibrations: tuple[Outcome, ...]
    unit_tests: tuple[Outcome, ...]
    matrices: tuple[tuple[Outcome, ...], ...]


def plan_slice(experiment_id: int, pool_ids: Sequence[int],
               problem_ids: Sequence[int], samples: tuple[int, int] | None = None) -> CodePlan:
    """What the sandbox must run to judge the pools' slice (its sample indices
    ``[first, last)`` only, when ``samples`` is given) and fill its pass matrices.

    Solution pools get unit-test runs (after their problems' canonical solutions are
    timed); a test pool gets its assertions extracted when the outcomes are recorded.
    A pass matrix needs both of its pools' samples: any slice of the problem that finds
    them all stored runs it.
    """
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    key = verifier_for(experiment)
    pools = SamplePool.objects.in_bulk(list(pool_ids))
    ordered = [pools[pool_id] for pool_id in pool_ids]
    solutions = [pool for pool in ordered if not is_test_pool(pool)]
    calibrations = calibration_runs(experiment, problem_ids) if solutions else []
    unit_tests = [run for pool in solutions
                  for run in unit_test_runs(experiment, key, pool.pk, problem_ids, samples)]
    return CodePlan(
        calibrations=tuple(calibrations),
        unit_tests=tuple(unit_tests),
        matrices=tuple(matrix_jobs(experiment, problem_ids)),
        config=unit_test_config(experiment),
        verifier=key,
        test_pools=tuple((pool.pk, tests_per_sample(experiment, pool.pk))
                         for pool in ordered if is_test_pool(pool)),
        problem_ids=tuple(problem_ids),
        experiment_id=experiment_id,
        samples=samples,
    )


def record_slice(plan: CodePlan, outcomes: CodeOutcomes) -> bool:
    """Store a slice's outcomes: calibration times, verdicts, extracted tests, matrices;
    nothing once the experiment is cancelled (``guard``). True when stored."""
    with unless_cancelled(plan.experiment_id) as is_open:
        if not is_open:
            return False
        for run, outcome in zip(plan.calibrations, outcomes.calibrations, strict=True):
            record_calibration(run.problem_id, outcome.status, outcome.seconds, outcome.detail)
        record_unit_test_verdicts(plan.verifier, [
            (run, outcome.status, outcome.detail)
            for run, outcome in zip(plan.unit_tests, outcomes.unit_tests, strict=True)
        ])
        for pool_id, limit in plan.test_pools:
            record_test_pool_verdicts(plan.verifier, pool_id, plan.problem_ids, limit,
                                      plan.samples)
        for job, job_outcomes in zip(plan.matrices, outcomes.matrices, strict=True):
            record_matrix(job, matrix_rows(job, job_outcomes))
    return True


def matrix_rows(job: MatrixJob, outcomes: Sequence[Outcome]) -> list[Sequence[bool] | None]:
    """Each solution's pass/fail per distinct test; ``None`` for one that never got
    through its own definition: CodeT and B4 leave it out (ALGORITHMS section 10)."""
    if not job.tests:
        return [[] for _ in job.programs]
    rows: list[Sequence[bool] | None] = []
    for outcome in outcomes:
        ran = outcome.status == "passed" or any(outcome.checks)
        rows.append(list(outcome.checks) if ran else None)
    return rows


def is_code(experiment: Experiment) -> bool:
    return experiment.dataset.kind == Dataset.Kind.CODE


def is_test_pool(pool: SamplePool) -> bool:
    return pool.scheme == TEST_SCHEME


def unit_test_config(experiment: Experiment) -> UnitTestConfig:
    return UnitTestConfig(**experiment.verifier_config)


def _view(problem: Problem) -> ProblemView:
    return ProblemView(prompt=problem.prompt, answer=None, metadata=problem.metadata)


def _wall(problem: Problem, config: UnitTestConfig) -> float:
    seconds = problem.metadata.get("canonical_seconds")
    return config.wall_seconds(float(seconds) if isinstance(seconds, (int, float)) else None)


# --- Calibration --------------------------------------------------------------------


def calibration_runs(experiment: Experiment, problem_ids: Sequence[int]) -> list[CodeRun]:
    """Canonical solutions of the slice not yet timed (problems without one are skipped)."""
    config = unit_test_config(experiment)
    runs = []
    for problem in Problem.objects.filter(pk__in=problem_ids).order_by("index"):
        meta = problem.metadata
        if not meta.get("canonical_solution") or "canonical_status" in meta:
            continue
        # A body continuing the prompt (HumanEval) or a whole function (MBPP, whose
        # prompt is prose): the same reading as a sample's.
        program = extract_program(str(meta["canonical_solution"]), problem.prompt,
                                  str(meta["entry_point"]))
        source = check_program(program, meta["test"], meta["entry_point"])
        runs.append(CodeRun(problem.pk, None, source, config.max_seconds,
                            config.memory_mb << 20))
    return runs


def record_calibration(problem_id: int, status: str, seconds: float, detail: str) -> None:
    """Keep a canonical run's time (the problem's time limit follows it) and status."""
    with transaction.atomic():
        problem = Problem.objects.select_for_update().get(pk=problem_id)
        problem.metadata = {**problem.metadata, "canonical_status": status,
                            "canonical_detail": detail[:DETAIL_CHARS]}
        if status == "passed":
            problem.metadata["canonical_seconds"] = round(seconds, 4)
        problem.save(update_fields=["metadata"])


# --- Unit-test verdicts ---------------------------------------------------------------


def unit_test_runs(experiment: Experiment, key: str, pool_id: int,
                   problem_ids: Sequence[int], samples: tuple[int, int] | None = None,
                   ) -> list[CodeRun]:
    """One run per solution sample of the slice (of ``samples``' indices, if given) that
    has no verdict under ``key``."""
    config = unit_test_config(experiment)
    pending = (Sample.objects.filter(in_range(samples), pool_id=pool_id,
                                     problem_id__in=problem_ids)
               .exclude(verdicts__verifier=key).select_related("problem")
               .order_by("problem__index", "index"))
    runs = []
    for sample in pending:
        problem = sample.problem
        entry_point = str(problem.metadata["entry_point"])
        program = extract_program(sample.text, problem.prompt, entry_point)
        runs.append(CodeRun(
            problem_id=problem.pk, sample_id=sample.pk,
            source=check_program(program, str(problem.metadata["test"]), entry_point),
            wall_seconds=_wall(problem, config), memory_bytes=config.memory_mb << 20,
            answer=program_answer(program, entry_point),
        ))
    return runs


def record_unit_test_verdicts(
    key: str, results: Iterable[tuple[CodeRun, str, str]]
) -> None:
    """Store (run, sandbox status, detail) as verdicts: only "passed" passes."""
    verdicts = [
        Verdict(sample_id=run.sample_id, verifier=key, answer=run.answer,
                outcome=Verdict.Outcome.PASS if status == "passed" else Verdict.Outcome.FAIL,
                detail=(status if not detail else f"{status}: {detail}")[:DETAIL_CHARS])
        for run, status, detail in results
    ]
    with counting_verdicts(key, pairs_of_samples(v.sample_id for v in verdicts)):
        Verdict.objects.bulk_create(verdicts, ignore_conflicts=True)


def record_test_pool_verdicts(key: str, pool_id: int, problem_ids: Sequence[int],
                              tests_per_sample: int,
                              samples: tuple[int, int] | None = None) -> int:
    """Give each generated-test sample (of ``samples``' indices, if given) its extracted
    assertions as a verdict."""
    pending = (Sample.objects.filter(in_range(samples), pool_id=pool_id,
                                     problem_id__in=problem_ids)
               .exclude(verdicts__verifier=key).select_related("problem"))
    verdicts = []
    for sample in pending:
        entry_point = str(sample.problem.metadata.get("entry_point", ""))
        tests = extract_assertions(sample.text, entry_point, limit=tests_per_sample)
        verdicts.append(Verdict(
            sample=sample, verifier=key, answer="\n".join(tests),
            outcome=Verdict.Outcome.UNJUDGED,
            detail=f"{len(tests)} generated assertion{'s' if len(tests) != 1 else ''}",
        ))
    with counting_verdicts(key, [(pool_id, pk) for pk in problem_ids]):
        Verdict.objects.bulk_create(verdicts, ignore_conflicts=True)
    return len(verdicts)


def tests_per_sample(experiment: Experiment, test_pool_id: int) -> int:
    """Assertions kept per generated-test sample: the most any strategy reading it asks."""
    values = [
        registry.get(s.selector).config_class(**s.selector_config).tests_per_sample
        for s in experiment.strategies.filter(test_pool_id=test_pool_id)
    ]
    return max(values, default=5)


# --- Pass matrices ------------------------------------------------------------------


def _test_columns(samples: Sequence[tuple[int, str]], entry_point: str, limit: int
                  ) -> tuple[list[str], list[int], list[int]]:
    """Distinct assertions, and one column per (test sample, assertion) in sample order."""
    tests: list[str] = []
    columns: list[int] = []
    column_samples: list[int] = []
    for index, text in samples:
        for assertion in extract_assertions(text, entry_point, limit=limit):
            if assertion not in tests:
                tests.append(assertion)
            columns.append(tests.index(assertion))
            column_samples.append(index)
    return tests, columns, column_samples


def matrix_jobs(experiment: Experiment, problem_ids: Sequence[int]) -> list[MatrixJob]:
    """Pass matrices the slice still needs: both pools generated, none stored large enough."""
    demands = pool_demands(experiment)
    config = unit_test_config(experiment)
    pairs = {(s.pool_id, s.test_pool_id) for s in experiment.strategies.all() if s.test_pool_id}
    jobs = []
    for solution_pool_id, test_pool_id in sorted(pairs):
        n, test_n = demands[solution_pool_id], demands[test_pool_id]
        limit = tests_per_sample(experiment, test_pool_id)
        for problem in Problem.objects.filter(pk__in=problem_ids).order_by("index"):
            if PassMatrix.objects.filter(
                solution_pool_id=solution_pool_id, test_pool_id=test_pool_id,
                problem=problem, n_solutions__gte=n, n_test_samples__gte=test_n,
            ).exists():
                continue
            if not (is_pool_problem_done(solution_pool_id, problem.pk, n)
                    and is_pool_problem_done(test_pool_id, problem.pk, test_n)):
                continue
            entry_point = str(problem.metadata["entry_point"])
            solutions = list(Sample.objects.filter(
                pool_id=solution_pool_id, problem=problem, index__lt=n
            ).order_by("index").values_list("text", flat=True))
            test_samples = list(Sample.objects.filter(
                pool_id=test_pool_id, problem=problem, index__lt=test_n
            ).order_by("index").values_list("index", "text"))
            tests, columns, column_samples = _test_columns(test_samples, entry_point, limit)
            jobs.append(MatrixJob(
                solution_pool_id=solution_pool_id, test_pool_id=test_pool_id,
                problem_id=problem.pk, n_solutions=n, n_test_samples=test_n,
                programs=tuple(extract_program(t, problem.prompt, entry_point)
                               for t in solutions),
                tests=tuple(tests), columns=tuple(columns),
                column_samples=tuple(column_samples), memory_bytes=config.memory_mb << 20,
            ))
    return jobs


def record_matrix(job: MatrixJob, rows: Sequence[Sequence[bool] | None]) -> None:
    """Store a matrix: per solution, one 0/1 per distinct test, ``None`` if it did not run."""
    PassMatrix.objects.update_or_create(
        solution_pool_id=job.solution_pool_id, test_pool_id=job.test_pool_id,
        problem_id=job.problem_id,
        defaults={
            "n_solutions": job.n_solutions, "n_test_samples": job.n_test_samples,
            "tests": list(job.tests), "columns": list(job.columns),
            "column_samples": list(job.column_samples),
            "rows": [None if row is None else [int(v) for v in row] for row in rows],
        },
    )


def missing_matrices(experiment: Experiment) -> int:
    """(strategy pools, problem) pairs whose pass matrix is not stored large enough yet."""
    demands = pool_demands(experiment)
    problems = experiment.problems.count()
    missing = 0
    pairs = {(s.pool_id, s.test_pool_id) for s in experiment.strategies.all() if s.test_pool_id}
    for solution_pool_id, test_pool_id in pairs:
        stored = PassMatrix.objects.filter(
            experiment.problem_q(),
            solution_pool_id=solution_pool_id, test_pool_id=test_pool_id,
            n_solutions__gte=demands[solution_pool_id],
            n_test_samples__gte=demands[test_pool_id],
        ).count()
        missing += problems - stored
    return missing


def problems_missing_matrices(experiment: Experiment, problem_ids: Iterable[int],
                              where: Q) -> set[int]:
    """Those of ``problem_ids`` (which the filter on ``problem``, ``where``, selects)
    lacking a pass matrix large enough for one of the experiment's pool pairs."""
    demands = pool_demands(experiment)
    wanted = set(problem_ids)
    missing: set[int] = set()
    pairs = {(s.pool_id, s.test_pool_id) for s in experiment.strategies.all() if s.test_pool_id}
    for solution_pool_id, test_pool_id in pairs:
        stored = set(PassMatrix.objects.filter(
            where, solution_pool_id=solution_pool_id, test_pool_id=test_pool_id,
            n_solutions__gte=demands[solution_pool_id],
            n_test_samples__gte=demands[test_pool_id],
        ).values_list("problem_id", flat=True))
        missing |= wanted - stored
    return missing


def strategy_matrices(strategy: Strategy) -> dict[int, PassMatrix]:
    """The stored pass matrix of each problem for this strategy's pools."""
    if strategy.test_pool_id is None:
        return {}
    return {
        m.problem_id: m
        for m in PassMatrix.objects.filter(
            strategy.experiment.problem_q(),
            solution_pool_id=strategy.pool_id, test_pool_id=strategy.test_pool_id,
        )
    }


def matrix_view(matrix: PassMatrix, n: int, test_n: int) -> tuple[np.ndarray, list[int]]:
    """The strategy's sub-matrix: its first ``n`` solutions that executed (rows) against
    the columns of its first ``test_n`` test samples; and those solutions' indices."""
    keep = [j for j, s in enumerate(matrix.column_samples) if s < test_n]
    executed = [i for i, row in enumerate(matrix.rows[:n]) if row is not None]
    array = np.array(
        [[matrix.rows[i][matrix.columns[j]] for j in keep] for i in executed], dtype=np.int64
    ).reshape(len(executed), len(keep))
    return array, executed
