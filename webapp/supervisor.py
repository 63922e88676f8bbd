"""Keep ``manage.py up``'s children alive: restart one that dies, say so, name its log.

A dead worker or Redis used to take everything down with it. Now each child is
restarted where it stood (Redis first, since the others reconnect to it); a child that
keeps dying (``max_restarts`` within ``window`` seconds, e.g. a port taken by something
else) stops the whole app with its log named, rather than loop for ever. Processes come
from injected factories, so the logic is tested without starting any.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class Process(Protocol):
    def poll(self) -> int | None: ...

    def stop(self) -> None: ...


class ChildFailed(RuntimeError):
    """A child kept dying; the message names it and its log."""


@dataclass
class Child:
    name: str
    log: Path
    start: Callable[[], Process]
    process: Process | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    """Starts children in order, restarts the dead ones, stops all in reverse order."""

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        max_restarts: int = 5,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock
        self.children: list[Child] = []

    def start(self, name: str, log: Path, factory: Callable[[], Process]) -> Process:
        """Start a child now; it is supervised from then on."""
        child = Child(name, log, factory)
        child.process = factory()
        self.children.append(child)
        return child.process

    def check(self) -> list[str]:
        """Restart every child that has exited; returns the names restarted."""
        restarted = []
        for child in self.children:
            if child.process is None:
                what = "could not be started"
            else:
                code = child.process.poll()
                if code is None:
                    continue
                what = f"exited with code {code}"
            now = self.clock()
            child.restarts = [t for t in child.restarts if now - t < self.window]
            if len(child.restarts) >= self.max_restarts:
                raise ChildFailed(
                    f"The {child.name} process {what} after "
                    f"{len(child.restarts)} restarts in {self.window:.0f} s; giving up. "
                    f"See {child.log}"
                )
            child.restarts.append(now)
            try:
                child.process = child.start()
            except Exception as exc:  # any start failure is retried, within the bound above
                child.process = None
                self.say(
                    f"The {child.name} process {what}; restarting it failed "
                    f"({exc}); trying again. See {child.log}"
                )
                continue
            restarted.append(child.name)
            self.say(
                f"The {child.name} process {what}; restarted it "
                f"(restart {len(child.restarts)} of at most {self.max_restarts} in "
                f"{self.window:.0f} s). See {child.log}"
            )
        return restarted

    def stop_all(self) -> None:
        """Stop every child, the last started first; a failure does not stop the rest."""
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.stop()
            except Exception:  # keep stopping the others
                logger.exception("could not stop the %s process", child.name)
