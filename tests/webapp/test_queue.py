"""The web app's one way into the workers: tasks enqueued by name land on their queue."""

from __future__ import annotations

from typing import Any

from webapp import queue
from workers import tasks


def test_generation_is_routed_to_the_gpu_queue_by_its_name() -> None:
    route = queue.app.amqp.router.route({}, queue.GENERATE_CHUNK, (), {})
    assert route["queue"].name == "gpu"
    assert tasks.generate_chunk.name == queue.GENERATE_CHUNK


def test_it_sends_the_task_by_name_with_its_arguments(monkeypatch: Any) -> None:
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(queue.app, "send_task",
                        lambda name, args: sent.append((name, args)))
    queue.send(queue.GENERATE_CHUNK, 7, [[1, 4]], [10, 11])
    assert sent == [("workers.tasks.generate_chunk", [7, [[1, 4]], [10, 11]])]
