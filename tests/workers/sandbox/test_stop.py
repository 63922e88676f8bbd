"""Stopping a ``Sandbox.run`` midway (an experiment was cancelled): the programs in flight
are killed, the rest never start, and the runners serve the next call."""

from __future__ import annotations

import time

import pytest

from tests.workers.sandbox.helpers import CORRECT, leftovers, runner_pids
from workers.sandbox import Limits, Program, Sandbox, Stopped

SLEEPER = Program(source="import time\ntime.sleep(60)\n", limits=Limits(wall_seconds=30.0))


def test_it_kills_the_programs_in_flight_and_starts_no_other() -> None:
    with Sandbox(workers=2) as box:
        before = {slot.runner.pid for slot in box._slots}
        asked: list[float] = []
        started = time.monotonic()

        def keep_going() -> bool:
            asked.append(time.monotonic() - started)
            return asked[-1] < 1.0

        with pytest.raises(Stopped):
            box.run([SLEEPER] * 5, keep_going=keep_going, poll_seconds=0.1)
        elapsed = time.monotonic() - started
        # Two programs ran (one per runner) and were killed well before their 30 s limit;
        # the three others never started.
        assert elapsed < 10, elapsed
        assert asked and min(asked) < 0.2
        assert leftovers(box) == []
        assert not before & runner_pids()  # both runners were killed
        # ... and start again for the next call.
        assert [o.status for o in box.run([CORRECT, CORRECT])] == ["passed", "passed"]
        assert {slot.runner.pid for slot in box._slots} <= runner_pids()


def test_it_runs_everything_while_told_to_keep_going(sandbox: Sandbox) -> None:
    programs = [Program(source=f"print({i})") for i in range(4)]
    outcomes = sandbox.run(programs, keep_going=lambda: True, poll_seconds=0.05)
    assert [o.stdout.strip() for o in outcomes] == ["0", "1", "2", "3"]


def test_it_stops_at_once_when_told_to_stop_at_the_start(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(Stopped):
        sandbox.run([SLEEPER] * 3, keep_going=lambda: False)
    assert time.monotonic() - started < 5
    assert leftovers(sandbox) == []
