"""Run a code slice's programs in the sandbox: calibration, unit tests and pass matrices.

``webapp.experiments.code_verification`` plans the slice (``plan_slice``: every program
with its limits) and stores the outcomes (``record_slice``); this module owns the
process's ``Sandbox`` (a pool of runners kept between tasks) and runs a plan there,
touching no database. It is called from the cpu-queue verification task, so verifying
one pool overlaps with the gpu worker generating the next.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Sequence

from django.conf import settings

from webapp.experiments.code_verification import CHECK_SECONDS, CodeOutcomes, CodePlan, CodeRun
from workers.sandbox import Limits, Outcome, Program, Sandbox, SandboxUnavailable, Stopped

logger = logging.getLogger(__name__)

__all__ = ["SandboxUnavailable", "Stopped", "get_sandbox", "run_code", "run_plan"]

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


def run_code(runs: Sequence[CodeRun],
             keep_going: Callable[[], bool] | None = None) -> list[Outcome]:
    """Each run's program in the sandbox, under its own time and memory limits;
    ``Stopped`` once ``keep_going()`` turns false (see ``Sandbox.run``)."""
    if not runs:
        return []
    return get_sandbox().run([
        Program(source=run.source,
                limits=Limits(wall_seconds=run.wall_seconds, memory_bytes=run.memory_bytes))
        for run in runs
    ], keep_going=keep_going)


def run_plan(plan: CodePlan, keep_going: Callable[[], bool] | None = None) -> CodeOutcomes:
    """Run every program of the plan: canonical solutions first, since a problem's time
    limit follows its canonical solution's time; then unit tests and pass matrices.
    Once ``keep_going()`` turns false (the experiment was cancelled) the programs in
    flight are killed, no other starts, and ``Stopped`` is raised."""
    calibrations = run_code(plan.calibrations, keep_going)
    timed: dict[int, float] = {}
    for run, outcome in zip(plan.calibrations, calibrations, strict=True):
        if outcome.status == "passed":
            timed[run.problem_id] = outcome.seconds
        else:
            logger.warning("canonical solution of problem %s did not pass: %s %s",
                           run.problem_id, outcome.status, outcome.detail)
    unit_tests = [
        CodeRun(run.problem_id, run.sample_id, run.source,
                plan.config.wall_seconds(round(timed[run.problem_id], 4)),
                run.memory_bytes, run.answer)
        if run.problem_id in timed else run
        for run in plan.unit_tests
    ]
    sandbox = get_sandbox() if plan.matrices else None
    matrices: list[tuple[Outcome, ...]] = []
    for job in plan.matrices:
        if not job.tests or sandbox is None:
            matrices.append(())
            continue
        limits = Limits(wall_seconds=job.wall_seconds, memory_bytes=job.memory_bytes,
                        check_seconds=CHECK_SECONDS)
        matrices.append(tuple(sandbox.run([
            Program(source=program, checks=job.tests, limits=limits) for program in job.programs
        ], keep_going=keep_going)))
    return CodeOutcomes(
        calibrations=tuple(calibrations),
        unit_tests=tuple(run_code(unit_tests, keep_going)),
        matrices=tuple(matrices),
    )
