"""The thread count follows the cores other processes leave free."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.runtime import threads
from workers.runtime.threads import ThreadPolicy, proc_stat_busy


class Machine:
    """A clock, the cores' busy seconds and this process's CPU seconds, set by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = 0.0
        self.own = 0.0

    def run(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += own_cores * seconds
        self.busy += (own_cores + other_cores) * seconds

    def policy(self, cores: int = 2) -> ThreadPolicy:
        return ThreadPolicy(
            frozenset(range(cores)),
            busy=lambda cpus: self.busy,
            own=lambda: self.own,
            clock=lambda: self.now,
        )


def test_it_keeps_every_core_when_the_others_are_idle() -> None:
    machine = Machine()
    policy = machine.policy()
    assert policy.choose() == 2
    machine.run(0.8, own_cores=2.0, other_cores=0.1)
    assert policy.choose() == 2


def test_it_gives_up_a_core_another_process_holds_and_takes_it_back() -> None:
    machine = Machine()
    policy = machine.policy()
    policy.choose()
    machine.run(0.8, own_cores=0.9, other_cores=1.0)  # two spinning threads, one core
    assert policy.choose() == 1
    assert policy.others == pytest.approx(1.0)
    machine.run(0.8, own_cores=1.0, other_cores=1.0)
    assert policy.choose() == 1
    machine.run(0.8, own_cores=1.0, other_cores=0.0)  # the other process ended
    assert policy.choose() == 2


def test_it_keeps_one_thread_on_a_saturated_machine() -> None:
    machine = Machine()
    policy = machine.policy(cores=4)
    policy.choose()
    machine.run(0.9, own_cores=0.5, other_cores=3.5)
    assert policy.choose() == 1
    machine.run(0.9, own_cores=2.0, other_cores=1.4)  # 1.4 cores: one taken, not two
    assert policy.choose() == 3


def test_it_does_not_judge_the_time_between_batches() -> None:
    """A batch restarts the interval: another program's turn in between is not judged,
    and the count decided in the last batch carries over."""
    machine = Machine()
    policy = machine.policy()
    policy.choose(restart=True)
    machine.run(0.5, own_cores=1.0, other_cores=1.0)
    assert policy.choose() == 1
    machine.run(5.0, own_cores=0.0, other_cores=2.0)
    assert policy.choose(restart=True) == 1
    machine.run(0.5, own_cores=2.0, other_cores=0.0)
    assert policy.choose() == 2
    machine.run(5.0, own_cores=0.0, other_cores=2.0)
    assert policy.choose(restart=True) == 2


def test_it_ignores_intervals_too_short_to_judge() -> None:
    machine = Machine()
    policy = machine.policy()
    policy.choose()
    reads = []
    policy._busy = lambda cpus: reads.append(cpus) or machine.busy  # type: ignore[method-assign]
    machine.run(0.1, own_cores=0.0, other_cores=2.0)
    assert policy.choose() == 2
    assert reads == []  # not even read
    machine.run(0.2, own_cores=0.0, other_cores=2.0)
    assert policy.choose() == 1


def test_it_reads_busy_time_of_its_cpus_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  300 0 30 900 10 0 0 0 0 0\n"
        "cpu0 100 0 10 400 5 0 0 0 0 0\n"
        "cpu1 200 0 20 500 5 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )
    ticks = 100
    assert proc_stat_busy(frozenset({0}), stat) == pytest.approx(110 / ticks)
    assert proc_stat_busy(frozenset({0, 1}), stat) == pytest.approx(330 / ticks)
    assert proc_stat_busy(frozenset({5}), stat) is None
    assert proc_stat_busy(frozenset({0}), tmp_path / "missing") is None


def test_adapt_sets_torchs_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = Machine()
    policy = machine.policy()
    monkeypatch.setattr(threads, "_POLICY", policy)
    monkeypatch.setattr(threads, "ADAPTIVE", True)
    before = torch.get_num_threads()
    try:
        threads.adapt()
        machine.run(0.8, own_cores=1.0, other_cores=1.0)
        threads.adapt()
        assert torch.get_num_threads() == 1
        machine.run(0.8, own_cores=1.0, other_cores=0.0)
        threads.adapt()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
