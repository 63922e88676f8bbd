"""Few-row decode steps on the CPU, compiled from ``gemv.c``.

A decode step over a few rows reads every weight once: its speed is the memory bandwidth
the projections reach, plus the dispatch of the eager step's ~35 small ops per layer.
oneDNN's prepacked kernels (``workers.runtime.lean``) are blocked for matrices; with one
row they read SmolLM2-135M's projections at about 25 GB/s on a 2-core AVX-512 CPU, where
one streaming AVX-512 dot product per output row reaches 30-45. No library torch ships
exposes such a loop for a plain row-major weight (``torch.mv`` and ``F.linear`` read it
at about 12 GB/s here), and ``torch.compile`` of the small ops measured slower than
eager (about 20 us of guards per call), so ``gemv.c`` holds:

* ``Gemv.__call__``: one projection, ``f(x) @ W.T (+ other)``, ``f`` nothing, RMSNorm
  (its weight folded into ``W``) or SiLU(gate) * up;
* ``Gemv.llama_step``: one token per row through every layer of a Llama-family model in
  the lean step's layout (norms, projections, rotation, row-cache writes, attention,
  residuals, head) in one call.

It is compiled once per machine with the system C compiler (``CC``, else ``cc``) at
``-O3 -march=native -fopenmp`` into ``STRATLAB_KERNEL_DIR`` (default
``~/.cache/stratlab/kernels``), named by a hash of the source, the compiler and the CPU,
written to a temporary file and renamed, so workers sharing the directory never load a
half-written library. Compiling takes about a second. The library uses the process's
OpenMP runtime (the one torch loaded), so ``torch.set_num_threads`` and the worker's
thread policy govern it too.

``kernel()`` returns None (and the lean step stays eager, on oneDNN) when there is no
compiler, the CPU lacks AVX-512 (the source refuses to compile), the build fails, or
``STRATLAB_GEMV=0``; the reason is logged once.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("gemv.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11")
#: ``STRATLAB_GEMV=0`` keeps oneDNN for every row count.
ENABLED = os.environ.get("STRATLAB_GEMV", "1") != "0"

_lock = threading.Lock()
_loaded: dict[str, Gemv | None] = {}


def kernel_dir() -> Path:
    """Where compiled kernels are cached."""
    configured = os.environ.get("STRATLAB_KERNEL_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stratlab" / "kernels"


def _cpu_identity() -> str:
    """The CPU's model and feature flags (a build for one CPU may not run on another)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [
        line for line in text.splitlines()
        if line.startswith(("model name", "flags", "Features"))
    ]
    return "\n".join(sorted(set(keep)))


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build(directory: Path | None = None) -> Path:
    """The compiled library's path, compiling it first if this machine has none cached.

    Raises ``RuntimeError`` with the compiler's message when it cannot be built.
    """
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler (set CC, or install cc)")
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, errors="replace",
            timeout=30, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"{compiler} does not run: {exc}") from exc
    digest = hashlib.sha256()
    for part in (source, version.encode(), " ".join(FLAGS).encode(), _cpu_identity().encode()):
        digest.update(part)
        digest.update(b"\0")
    directory = kernel_dir() if directory is None else directory
    target = directory / f"gemv-{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".gemv-", suffix=".so", dir=directory)
    os.close(handle)
    try:
        try:
            done = subprocess.run(
                [compiler, *FLAGS, str(SOURCE), "-o", temporary, "-lm"],
                capture_output=True, text=True, errors="replace", timeout=300, check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"{compiler} did not finish: {exc}") from exc
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"{compiler} failed: {' / '.join(message[:3])}")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


class StepShape(ctypes.Structure):
    """``gemv.c``'s ``StepShape``: a Llama model's sizes and the row cache's strides."""

    _fields_ = [
        ("layers", ctypes.c_int64),
        ("hidden", ctypes.c_int64),
        ("heads", ctypes.c_int64),
        ("kv_heads", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("intermediate", ctypes.c_int64),
        ("vocab", ctypes.c_int64),
        ("eps", ctypes.c_float),
        ("bf16", ctypes.c_int32),
        ("cache_layer", ctypes.c_int64),
        ("cache_row", ctypes.c_int64),
        ("cache_head", ctypes.c_int64),
        ("cache_column", ctypes.c_int64),
    ]


#: What ``Gemv.__call__`` does to the input rows before the product (``gemv.c``).
PROLOGUES = {"as_is": 0, "rms_normed": 1, "silu_gated": 2}


class Gemv:
    """The loaded library: ``y = f(x) @ weight.T (+ other)`` for float32 and bfloat16."""

    def __init__(self, path: Path) -> None:
        library = ctypes.CDLL(str(path))
        pointer, size = ctypes.c_void_p, ctypes.c_int64
        for name in ("stratlab_gemv_f32", "stratlab_gemv_bf16"):
            function = getattr(library, name)
            function.argtypes = [
                pointer, pointer, pointer, pointer, size, size, size, ctypes.c_int,
                ctypes.c_float,
            ]
            function.restype = ctypes.c_int
        library.stratlab_gemv_bf16_pairs.restype = ctypes.c_int
        step = library.stratlab_llama_step
        step.argtypes = [
            ctypes.POINTER(StepShape), ctypes.POINTER(ctypes.c_void_p), pointer, pointer,
            pointer, size, pointer, size, size, pointer,
        ]
        step.restype = ctypes.c_int
        self._llama_step = step
        self.path = path
        #: Whether bf16 products use AVX-512 BF16's pair instruction (``gemv.c``).
        self.bf16_pairs = bool(library.stratlab_gemv_bf16_pairs())
        self._f32 = library.stratlab_gemv_f32
        self._bf16 = library.stratlab_gemv_bf16

    def supports(self, weight: torch.Tensor) -> bool:
        """Whether ``weight`` (``[out, in]``) can be multiplied by this library."""
        import torch

        return (
            weight.device.type == "cpu"
            and weight.dim() == 2
            and weight.is_contiguous()
            and weight.dtype in (torch.float32, torch.bfloat16)
        )

    def __call__(
        self,
        weight: torch.Tensor,
        x: torch.Tensor,
        other: torch.Tensor | None = None,
        *,
        prologue: str = "as_is",
        eps: float = 0.0,
    ) -> torch.Tensor:
        """``f(x) @ weight.T`` (plus ``other``) for ``x [rows, in]`` in ``weight``'s dtype.

        ``f`` is the ``prologue``: ``as_is``; ``rms_normed`` (each row over its root mean
        square, ``eps`` added to the mean of squares: RMSNorm with its weight folded into
        ``weight``); ``silu_gated`` (``x [rows, 2 in]``, gate then up: ``silu(gate) *
        up``). In bfloat16 the prologue rounds where the eager ops would.
        """
        import torch

        out_features, in_features = weight.shape
        mode = PROLOGUES[prologue]
        width = 2 * in_features if prologue == "silu_gated" else in_features
        if x.dim() != 2 or x.shape[1] != width or x.dtype != weight.dtype:
            raise ValueError(
                f"input {tuple(x.shape)} {x.dtype} does not fit weight "
                f"{tuple(weight.shape)} {weight.dtype} ({prologue})"
            )
        x = x.contiguous()
        rows = x.shape[0]
        result = torch.empty((rows, out_features), dtype=weight.dtype)
        added = None
        if other is not None:
            if other.shape != result.shape:
                raise ValueError(f"residual {tuple(other.shape)} is not {tuple(result.shape)}")
            other = other.to(weight.dtype).contiguous()
            added = other.data_ptr()
        function = self._f32 if weight.dtype == torch.float32 else self._bf16
        failed = function(
            weight.data_ptr(), x.data_ptr(), result.data_ptr(), added,
            out_features, in_features, rows, mode, eps,
        )
        if failed:
            raise torch.OutOfMemoryError(f"cannot allocate memory for {rows} input rows")
        return result


    def llama_step(
        self,
        shape: StepShape,
        weights: ctypes.Array[ctypes.c_void_p],
        x: torch.Tensor,
        rotation: torch.Tensor,
        cache: torch.Tensor,
        column: int,
        valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """Float32 logits ``[rows, vocab]`` of one token per row through every layer.

        ``weights``: each layer's row-major q/k/v, output, gate/up and down projections,
        then the head (``workers.runtime.lean`` layouts, norms folded in); ``x``: the
        token embeddings ``[rows, hidden]``; ``rotation``: float32 ``[rows, head_dim]``
        (cos, sin per rotary pair); ``cache``: the row cache's buffer from the step's
        first row on (``buffer[:, start:]``), written at ``column``; ``valid``: the rows'
        ``RowCache.valid`` when any row is left-padded.
        """
        import torch

        rows = x.shape[0]
        if cache.stride(-1) != 1 or not x.is_contiguous() or not rotation.is_contiguous():
            raise ValueError("the step needs contiguous embeddings, rotations and head dims")
        if cache.dtype != x.dtype or cache.shape[1] != rows or not 0 <= column < cache.shape[3]:
            raise ValueError(
                f"cache {tuple(cache.shape)} {cache.dtype} cannot take column {column} of "
                f"{rows} rows of {x.dtype}"
            )
        logits = torch.empty((rows, shape.vocab), dtype=torch.float32)
        valid_pointer, valid_row = None, 0
        if valid is not None:
            if valid.dtype != torch.bool or valid.stride(-1) != 1:
                raise ValueError("valid must be a bool tensor with contiguous columns")
            valid_pointer, valid_row = valid.data_ptr(), valid.stride(0)
        failed = self._llama_step(
            ctypes.byref(shape), weights, x.data_ptr(), rotation.data_ptr(), cache.data_ptr(),
            column, valid_pointer, valid_row, rows, logits.data_ptr(),
        )
        if failed:
            raise torch.OutOfMemoryError(f"cannot allocate memory for a step over {rows} rows")
        return logits


def kernel() -> Gemv | None:
    """The compiled library for this machine, built on first use; None where it cannot be
    (the reason is logged once)."""
    if not ENABLED:
        return None
    key = str(kernel_dir())
    with _lock:
        if key not in _loaded:
            try:
                _loaded[key] = Gemv(build())
                logger.info("one-row projections through %s", _loaded[key].path)  # type: ignore[union-attr]
            except (RuntimeError, OSError) as exc:
                logger.info("one-row projections stay on oneDNN: %s", exc)
                _loaded[key] = None
        return _loaded[key]
