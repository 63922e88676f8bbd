"""Length-prefixed JSON frames between the host and a sandbox runner, over plain pipes.

Used on both sides: imported normally by the host, loaded by path inside the runner
(standard library only). JSON rather than pickle because a frame from the runner
carries the untrusted program's output, and decoding it must not be able to run code.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
#: Larger frames are a protocol error (a job's source or a run's captured output is far smaller).
MAX_FRAME = 64 << 20


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write one frame; raises ``BrokenPipeError`` when the reader is gone."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("no answer from the sandbox runner in time")
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the sandbox runner closed its pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None) -> dict[str, Any]:
    """Read one frame, waiting until ``deadline`` (``time.monotonic()``) at most.

    Raises ``EOFError`` when the writer closed the pipe, ``TimeoutError`` past the
    deadline and ``ValueError`` for a malformed frame.
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the {MAX_FRAME} byte limit")
    message = json.loads(_read_exact(fd, size, deadline))
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message
