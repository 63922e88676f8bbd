"""Run an experiment's code in the sandbox: calibration, unit tests and pass matrices.

``webapp.experiments.code_verification`` says what to run and stores the outcomes; this
module owns the process's ``Sandbox`` (a pool of runners kept between tasks) and
executes the runs there. It is called from the cpu-queue verification task, so
verifying one pool overlaps with the gpu worker generating the next.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Sequence

from django.conf import settings

from webapp.experiments import code_verification as cv
from webapp.experiments.models import Experiment, SamplePool
from webapp.experiments.verification import verifier_for
from workers.sandbox import Limits, Outcome, Program, Sandbox, SandboxUnavailable

logger = logging.getLogger(__name__)

__all__ = ["SandboxUnavailable", "get_sandbox", "run_code", "verify_code_chunk"]

_lock = threading.Lock()
_sandbox: Sandbox | None = None


def get_sandbox() -> Sandbox:
    """This process's sandbox, started on first use; ``SandboxUnavailable`` when the
    machine offers no isolation and the operator has not opted out of it."""
    global _sandbox
    with _lock:
        if _sandbox is None:
            _sandbox = Sandbox(
                workers=settings.STRATLAB_SANDBOX_WORKERS,
                allow_unisolated=settings.STRATLAB_SANDBOX_ALLOW_UNISOLATED,
                hidden_paths=settings.STRATLAB_SANDBOX_HIDDEN_PATHS,
            )
            logger.info("sandbox ready: %s", _sandbox.isolation.description)
            atexit.register(_sandbox.close)
        return _sandbox


def run_code(runs: Sequence[cv.CodeRun]) -> list[Outcome]:
    """Each run's program in the sandbox, under its own time and memory limits."""
    if not runs:
        return []
    return get_sandbox().run([
        Program(source=run.source,
                limits=Limits(wall_seconds=run.wall_seconds, memory_bytes=run.memory_bytes))
        for run in runs
    ])


def _calibrate(experiment: Experiment, problem_ids: Sequence[int]) -> None:
    runs = cv.calibration_runs(experiment, problem_ids)
    for run, outcome in zip(runs, run_code(runs), strict=True):
        if outcome.status != "passed":
            logger.warning("canonical solution of problem %s did not pass: %s %s",
                           run.problem_id, outcome.status, outcome.detail)
        cv.record_calibration(run.problem_id, outcome.status, outcome.seconds, outcome.detail)


def _matrices(experiment: Experiment, problem_ids: Sequence[int]) -> None:
    sandbox = get_sandbox()
    for job in cv.matrix_jobs(experiment, problem_ids):
        limits = Limits(wall_seconds=job.wall_seconds, memory_bytes=job.memory_bytes,
                        check_seconds=cv.CHECK_SECONDS)
        outcomes = sandbox.run([Program(source=program, checks=job.tests, limits=limits)
                                for program in job.programs]) if job.tests else []
        rows: list[Sequence[bool] | None] = []
        for index in range(len(job.programs)):
            if not job.tests:
                rows.append([])
                continue
            outcome = outcomes[index]
            # A solution that never got through its own definition did not execute:
            # CodeT and B4 leave it out (ALGORITHMS section 10).
            ran = outcome.status == "passed" or any(outcome.checks)
            rows.append(list(outcome.checks) if ran else None)
        cv.record_matrix(job, rows)


def verify_code_chunk(experiment: Experiment, pools: Sequence[SamplePool],
                      problem_ids: Sequence[int]) -> None:
    """Judge the pools' slice of a code experiment, then fill the pass matrices it allows.

    Solution pools get unit-test verdicts (after timing the problems' canonical
    solutions); a test pool gets its extracted assertions. Together they may complete
    the inputs of a CodeT/B4 matrix, which is then run, once for the slice.
    """
    key = verifier_for(experiment)
    if not all(cv.is_test_pool(pool) for pool in pools):
        _calibrate(experiment, problem_ids)
    for pool in pools:
        if cv.is_test_pool(pool):
            cv.record_test_pool_verdicts(key, pool.pk, problem_ids,
                                         cv.tests_per_sample(experiment, pool.pk))
            continue
        runs = cv.unit_test_runs(experiment, key, pool.pk, problem_ids)
        outcomes = run_code(runs)
        cv.record_unit_test_verdicts(
            key, [(run, o.status, o.detail) for run, o in zip(runs, outcomes, strict=True)]
        )
    _matrices(experiment, problem_ids)
