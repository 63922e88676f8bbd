"""Bench: the batched engine vs transformers ``generate``, in tokens/s and peak memory.

Run: .venv/bin/python bench/generation.py [--prompts 2] [--before OLD_ENGINE.py]

Same prompts (the first arithmetic problems of ``strategies.data.arithmetic``, chat
template applied), same model (the packaged SmolLM2-135M-Instruct from
``workers.runtime.models.get_model``, cache ``var/models``) and same sampling settings
(temperature 0.8, top-p 0.95, top-k off, max_new_tokens 64) for three generators:

* ``engine``: ``workers.runtime.engine.generate(n=N)`` with ``build_processor``
  (``--before FILE`` adds an ``engine_before`` row: another engine.py, e.g. the previous
  one, measured in the same process right after it);
* ``hf_generate``: one ``model.generate(num_return_sequences=N, do_sample=True, top_k=0)``
  per prompt;
* ``hf_separate``: N calls of ``model.generate`` per prompt (only for 1 < N <= 16, on the
  first prompt only: at batch size 1 its rate is that of ``hf_generate`` at N = 1).

Tokens/s counts real tokens only: per sequence, the tokens up to and including the first
end-of-sequence token (HF pads finished rows; the padding is not counted). Peak memory is
the peak process RSS (psutil, sampled every 5 ms by a thread) minus the RSS just before
the run: tracemalloc does not see torch's allocations. N = 1 rows are medians of 3 runs,
larger N one run each, to keep the whole bench near 8 minutes on 2 CPU cores. The
roofline fraction is engine FLOP/s (2 x parameters per generated token) over the matmul
GFLOP/s measured at the start of this run. fp32 and bf16 rows load the model in that
dtype for every generator.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import importlib.util
import statistics
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
from workers.runtime import engine  # noqa: E402
from workers.runtime.models import LoadedModel, get_model  # noqa: E402

MODEL = "smollm2-135m-instruct"
TEMPERATURE = 0.8
TOP_P = 0.95
SEED = 1234
#: The engine under test; ``--engine FILE`` swaps in another copy of engine.py.
ENGINE: dict[str, Any] = {"generate": engine.generate}


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
    loaded: LoadedModel, prompts: list[str], n: int, max_new: int, which: str = "generate"
) -> int:
    """Engine: one ``generate`` call per prompt; returns the real tokens generated."""
    generate = ENGINE[which]
    config = DecodingConfig(temperature=TEMPERATURE, top_p=TOP_P, max_new_tokens=max_new)
    processor = build_processor(config)
    total = 0
    for i, prompt in enumerate(prompts):
        samples = generate(
            loaded,
            prompt,
            n=n,
            processor=processor,
            greedy=False,
            max_new_tokens=max_new,
            seed=SEED + i,
        )
        total += sum(s.generated_tokens for s in samples)
    return total


def run_engine_before(loaded: LoadedModel, prompts: list[str], n: int, max_new: int) -> int:
    """The engine given by ``--before`` (e.g. the previous engine.py), measured alike."""
    return run_engine(loaded, prompts, n, max_new, which="before")


def _hf_call(loaded: LoadedModel, ids: list[int], n: int, max_new: int) -> torch.Tensor:
    input_ids = torch.tensor([ids])
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=True,
            top_k=0,
            top_p=TOP_P,
            temperature=TEMPERATURE,
            num_return_sequences=n,
            max_new_tokens=max_new,
            eos_token_id=list(loaded.eos_token_ids),
            pad_token_id=loaded.eos_token_ids[0],
        )
    return out[:, len(ids) :]


def run_hf(loaded: LoadedModel, prompts: list[str], n: int, max_new: int) -> int:
    """transformers: one ``generate(num_return_sequences=n)`` per prompt."""
    torch.manual_seed(SEED)
    eos = set(loaded.eos_token_ids)
    return sum(
        real_tokens(_hf_call(loaded, loaded.encode_prompt(p), n, max_new), eos) for p in prompts
    )


def run_hf_separate(loaded: LoadedModel, prompts: list[str], n: int, max_new: int) -> int:
    """transformers: ``n`` separate ``generate`` calls per prompt."""
    torch.manual_seed(SEED)
    eos = set(loaded.eos_token_ids)
    total = 0
    for prompt in prompts:
        ids = loaded.encode_prompt(prompt)
        total += sum(real_tokens(_hf_call(loaded, ids, 1, max_new), eos) for _ in range(n))
    return total


Runner = Callable[[LoadedModel, list[str], int, int], int]


def measure(
    runner: Runner, loaded: LoadedModel, prompts: list[str], n: int, max_new: int, runs: int
) -> dict[str, float]:
    """Median tokens/s, seconds and peak RSS delta over ``runs`` runs."""
    rates: list[float] = []
    secs: list[float] = []
    peaks: list[float] = []
    tokens = 0
    for _ in range(runs):
        with PeakRSS() as rss:
            started = time.perf_counter()
            tokens = runner(loaded, prompts, n, max_new)
            elapsed = time.perf_counter() - started
        rates.append(tokens / elapsed)
        secs.append(elapsed)
        peaks.append(rss.peak_mib)
    return {
        "tps": statistics.median(rates),
        "seconds": statistics.median(secs),
        "peak_mib": statistics.median(peaks),
        "tokens": tokens,
        "runs": runs,
    }


def bf16_copy(loaded: LoadedModel) -> LoadedModel:
    """The same model with its weights cast to bfloat16."""
    model = copy.deepcopy(loaded.model).to(torch.bfloat16)
    model.eval()
    return dataclasses.replace(loaded, model=model, dtype=torch.bfloat16)


def main() -> None:
    """Run every configuration and print one table per dtype."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--ns", type=str, default="1,16,64")
    parser.add_argument("--dtypes", type=str, default="fp32,bf16")
    parser.add_argument("--small-runs", type=int, default=3, help="runs for N = 1")
    parser.add_argument("--large-runs", type=int, default=1, help="runs for N > 1")
    parser.add_argument("--separate-prompts", type=int, default=1, help="prompts for hf_separate")
    parser.add_argument("--skip-separate", action="store_true")
    parser.add_argument(
        "--before", type=Path, help="another engine.py (e.g. the previous one) to measure too"
    )
    args = parser.parse_args()
    if args.before is not None:
        spec = importlib.util.spec_from_file_location("engine_before", args.before)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        ENGINE["before"] = module.generate
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    bench_started = time.perf_counter()

    torch.set_grad_enabled(False)
    ns = [int(x) for x in args.ns.split(",")]
    base = get_model(MODEL, cache_dir=ROOT / "var" / "models", device="cpu")
    problems = generate_arithmetic(ArithmeticConfig(size=args.prompts, seed=0))
    prompts = [base.render_prompt(p.prompt) for p in problems]
    params = sum(p.numel() for p in base.model.parameters())
    flops_per_token = 2 * params
    gflops = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(
        f"model {MODEL}: {params / 1e6:.1f} M parameters, roofline "
        f"{flops_per_token / 1e9:.3f} GFLOP per token; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"measured 1024^3 matmul: fp32 {gflops['fp32']:.1f} GFLOP/s, "
        f"bf16 {gflops['bf16']:.1f} GFLOP/s"
    )
    print(
        f"{len(prompts)} arithmetic prompts, max_new_tokens {args.max_new_tokens}, "
        f"temperature {TEMPERATURE}, top_p {TOP_P}, top_k 0; medians of "
        f"{args.small_runs} runs for N = 1, {args.large_runs} for N > 1; hf_separate "
        f"(N calls of generate) on the first {args.separate_prompts} prompt(s) only, "
        "not at N = 1 (there it is hf_generate)"
    )
    if args.before is not None:
        print(f"engine_before: {args.before}, measured in this process right after engine")
    print("memory: peak process RSS delta over the run (psutil sampling every 5 ms), MiB")

    ratio64: dict[str, float] = {}
    for dtype_name in args.dtypes.split(","):
        loaded = base if dtype_name == "fp32" else bf16_copy(base)
        # Warm-up: first calls pay one-off costs (allocator, kernels).
        run_engine(loaded, prompts[:1], 2, 4)
        run_hf(loaded, prompts[:1], 2, 4)
        print(f"\n[{dtype_name}]")
        header = (
            f"{'N':>3} {'generator':<12} {'tok/s':>8} {'s':>7} {'tokens':>7} {'peakMiB':>8} "
            f"{'runs':>4}  notes"
        )
        print(header)
        for n in ns:
            runs = args.small_runs if n == 1 else args.large_runs
            results: dict[str, dict[str, float]] = {}
            results["engine"] = measure(run_engine, loaded, prompts, n, args.max_new_tokens, runs)
            if args.before is not None:
                results["engine_before"] = measure(
                    run_engine_before, loaded, prompts, n, args.max_new_tokens, runs
                )
            results["hf_generate"] = measure(run_hf, loaded, prompts, n, args.max_new_tokens, runs)
            if 1 < n <= 16 and not args.skip_separate:
                results["hf_separate"] = measure(
                    run_hf_separate,
                    loaded,
                    prompts[: args.separate_prompts],
                    n,
                    args.max_new_tokens,
                    args.large_runs,
                )
            for name, r in results.items():
                note = ""
                if name == "engine":
                    fraction = r["tps"] * flops_per_token / (gflops["fp32"] * 1e9)
                    note = f"{100 * fraction:.1f}% of fp32 matmul peak"
                    if dtype_name == "bf16":
                        fraction_bf = r["tps"] * flops_per_token / (gflops["bf16"] * 1e9)
                        note += f", {100 * fraction_bf:.1f}% of bf16 matmul peak"
                else:
                    note = f"engine/{name} = {results['engine']['tps'] / r['tps']:.2f}x"
                print(
                    f"{n:>3} {name:<12} {r['tps']:>8.1f} {r['seconds']:>7.2f} "
                    f"{int(r['tokens']):>7} {r['peak_mib']:>8.1f} {int(r['runs']):>4}  {note}"
                )
            if n == 64:
                ratio64[dtype_name] = results["engine"]["tps"] / results["hf_generate"]["tps"]
        if loaded is not base:
            del loaded
            gc.collect()
    print(f"\ntotal bench time {time.perf_counter() - bench_started:.0f} s")
    if "fp32" in ratio64:
        print(f"engine/hf_generate tokens-per-second ratio at N=64: {ratio64['fp32']:.2f}")


if __name__ == "__main__":
    main()
