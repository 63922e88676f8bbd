"""The compiled one-row projection (``workers.runtime.gemv``) and the lean step's use of it."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from workers.runtime import gemv, lean
from workers.runtime.engine import generate
from workers.runtime.kv_cache import RowCache
from workers.runtime.models import LoadedModel

from .helpers import hf_greedy


def _avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.fixture
def kernel() -> gemv.Gemv:
    built = gemv.kernel()
    if built is None:
        if _avx512() and gemv._compiler() is not None:
            pytest.fail("an AVX-512 machine with a C compiler must build the kernel")
        pytest.skip("no AVX-512 CPU or no C compiler: the lean step keeps oneDNN")
    return built


@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("inputs", [64, 70, 1])
def test_float32_products_and_residual_adds_match_torch(
    kernel: gemv.Gemv, rows: int, inputs: int
) -> None:
    """Input sizes that are and are not multiples of the 16-float vector."""
    generator = torch.Generator().manual_seed(rows * 100 + inputs)
    weight = torch.randn(37, inputs, generator=generator)
    x = torch.randn(rows, inputs, generator=generator)
    other = torch.randn(rows, 37, generator=generator)

    torch.testing.assert_close(kernel(weight, x), x @ weight.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        kernel(weight, x, other), x @ weight.T + other, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("rows", [1, 2])
def test_bfloat16_products_are_rounded_once_from_float32_sums(
    kernel: gemv.Gemv, rows: int
) -> None:
    generator = torch.Generator().manual_seed(rows)
    weight = torch.randn(50, 83, generator=generator).to(torch.bfloat16)
    x = torch.randn(rows, 83, generator=generator).to(torch.bfloat16)
    other = torch.randn(rows, 50, generator=generator).to(torch.bfloat16)

    got = kernel(weight, x, other)

    exact = x.double() @ weight.double().T + other.double()
    assert got.dtype == torch.bfloat16
    # One rounding of a float32 sum: within one bf16 step (2^-8 relative) of the exact value.
    assert ((got.double() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("rows", [1, 2])
def test_its_prologues_are_the_eager_ops_before_a_projection(
    kernel: gemv.Gemv, dtype: torch.dtype, rows: int
) -> None:
    """RMSNorm (weight folded away) and SiLU(gate) * up, computed on the input rows in
    the kernel, give what the eager ops and a product give, rounding included in bf16."""
    generator = torch.Generator().manual_seed(rows)
    weight = torch.randn(40, 72, generator=generator).to(dtype)
    x = (3 * torch.randn(rows, 72, generator=generator)).to(dtype)
    mixed = torch.randn(rows, 144, generator=generator).to(dtype)
    other = torch.randn(rows, 40, generator=generator).to(dtype)

    def product(inputs: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        exact = inputs.double() @ weight.double().T
        return exact if add is None else exact + add.double()

    normed = torch.nn.functional.rms_norm(x, (72,), eps=1e-5)
    gate, up = mixed.chunk(2, dim=-1)
    gated = torch.nn.functional.silu(gate) * up
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {
        "rtol": 2**-7, "atol": 1e-2
    }
    got = kernel(weight, x, prologue="rms_normed", eps=1e-5)
    torch.testing.assert_close(got.double(), product(normed), **tolerance)
    got = kernel(weight, mixed, other, prologue="silu_gated")
    torch.testing.assert_close(got.double(), product(gated, other), **tolerance)
    with pytest.raises(ValueError, match="silu_gated"):
        kernel(weight, x, prologue="silu_gated")  # gate and up: twice the inputs


def test_its_silu_is_within_float_rounding_of_torch_over_the_whole_range(
    kernel: gemv.Gemv,
) -> None:
    """The SiLU before the down projection takes e^x sixteen floats at a time: through an
    identity weight its values are torch's to a few float32 roundings, from gates whose
    e^-g overflows to ones whose e^-g underflows, the vector body and the scalar tail."""
    width = 1000 + 7
    gate = torch.cat([
        torch.linspace(-110.0, 110.0, 1000),
        torch.tensor([-88.8, -88.7, 87.3, 103.9, 0.0, -0.0, 1e-30]),
    ])
    mixed = torch.cat([gate, torch.ones(width)]).unsqueeze(0)

    got = kernel(torch.eye(width), mixed, prologue="silu_gated")

    # Where e^-g overflows float32 (g < -88.7) both give 0 or a subnormal.
    expected = torch.nn.functional.silu(gate).unsqueeze(0)
    torch.testing.assert_close(got, expected, rtol=4e-7, atol=1e-36)
    assert torch.isfinite(got).all()


def test_it_refuses_inputs_that_do_not_fit(kernel: gemv.Gemv) -> None:
    weight = torch.randn(8, 16)
    with pytest.raises(ValueError, match="does not fit"):
        kernel(weight, torch.randn(2, 15))
    with pytest.raises(ValueError, match="does not fit"):
        kernel(weight, torch.randn(2, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="residual"):
        kernel(weight, torch.randn(2, 16), torch.randn(3, 8))
    assert not kernel.supports(torch.randn(16, 8).T)  # not row-major


def test_a_failed_allocation_in_it_is_an_out_of_memory_error(
    kernel: gemv.Gemv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C code returns -1 when it cannot allocate; callers see the error the engine
    halves its batch on."""
    monkeypatch.setattr(kernel, "_f32", lambda *args: -1)
    with pytest.raises(torch.OutOfMemoryError, match="cannot allocate memory"):
        kernel(torch.randn(8, 16), torch.randn(2, 16))


def test_a_build_is_cached_per_machine_and_reused(
    kernel: gemv.Gemv, tmp_path: Path
) -> None:
    first = gemv.build(tmp_path)
    built_at = first.stat().st_mtime_ns
    second = gemv.build(tmp_path)

    assert second == first and second.stat().st_mtime_ns == built_at
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left


def test_without_a_compiler_the_step_keeps_onednn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("STRATLAB_KERNEL_DIR", str(tmp_path / "kernels"))
    monkeypatch.setattr(gemv, "_loaded", {})
    with caplog.at_level("INFO", logger="workers.runtime.gemv"):
        assert gemv.kernel() is None
    assert "stay on oneDNN" in caplog.text and "no-such-cc" in caplog.text
    assert not any((tmp_path / "kernels").glob("*.so"))


def test_a_failing_compiler_is_reported_with_its_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "cc"
    script.write_text(
        "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho 'gemv.c: broken' >&2\nexit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("CC", str(script))
    with pytest.raises(RuntimeError, match="gemv.c: broken"):
        gemv.build(tmp_path / "kernels")
    assert not any((tmp_path / "kernels").iterdir())


def test_it_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemv, "ENABLED", False)
    assert gemv.kernel() is None


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Rows of every projection and every whole step the kernel runs."""
    calls: dict[str, list[int]] = {"projection": [], "step": []}
    projection, step = gemv.Gemv.__call__, gemv.Gemv.llama_step

    def counting(
        self: gemv.Gemv, weight: Any, x: torch.Tensor, other: Any = None, **options: Any
    ) -> Any:
        calls["projection"].append(x.shape[0])
        return projection(self, weight, x, other, **options)

    def counting_steps(
        self: gemv.Gemv, shape: Any, weights: Any, x: torch.Tensor, *rest: Any
    ) -> Any:
        calls["step"].append(x.shape[0])
        return step(self, shape, weights, x, *rest)

    monkeypatch.setattr(gemv.Gemv, "__call__", counting)
    monkeypatch.setattr(gemv.Gemv, "llama_step", counting_steps)
    return calls


def _one_token_logits(
    step: lean.LlamaStep, loaded: LoadedModel, ids: list[int], rows: int
) -> torch.Tensor:
    cache = RowCache(loaded.model, rows, len(ids) + 2, dtype=loaded.dtype, device=loaded.device)
    prefilled, _ = step.prefill(ids)
    cache.write_prompt(slice(0, rows), prefilled, 0)
    cache.column = len(ids)
    with torch.inference_mode():
        logits = step(cache, torch.full((rows, 1), 7), torch.full((rows, 1), len(ids)), 0, rows)
    # The new keys and values are in the cache too.
    assert cache.buffer[:, :rows, :, len(ids)].abs().sum() > 0
    return logits


def test_the_lean_step_runs_few_row_steps_whole_in_it(
    tiny: LoadedModel, kernel: gemv.Gemv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-token steps of up to ``GEMV_ROWS`` rows (fp32 here) run whole in the kernel,
    wider ones through oneDNN; the logits are the eager step's either way."""
    step = lean.LlamaStep(tiny.model)  # a fresh step, built with the kernel
    step.prefixes.limit = 0  # each prefill runs (the prompt is the same every time)
    most = lean.GEMV_ROWS[str(tiny.dtype)]
    assert step.fused_rows == most
    calls = _count_calls(monkeypatch)
    ids = tiny.encode_prompt(tiny.render_prompt("What is 2 + 2?"))
    for rows in (1, most, most + 1):
        calls["step"].clear()
        fused = _one_token_logits(step, tiny, ids, rows)
        assert calls["step"] == ([rows] if rows <= most else [])
        monkeypatch.setattr(step, "fused_rows", 0)
        calls["projection"].clear()
        eager = _one_token_logits(step, tiny, ids, rows)
        monkeypatch.setattr(step, "fused_rows", most)
        # Eager few-row projections go through the kernel one by one (and the prefill's
        # head, over the prompt's last position, in every case).
        projections = 4 * len(step.layers) + 1 if rows <= most else 0
        assert calls["projection"] == [1] + [rows] * projections
        torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-4)


def test_greedy_decoding_through_it_matches_transformers(
    tiny: LoadedModel, kernel: gemv.Gemv
) -> None:
    prompt = tiny.render_prompt("Name three colours and a number.")
    tokens = generate(tiny, prompt, n=1, processor=None, greedy=True, max_new_tokens=24, seed=0)
    assert list(tokens[0].token_ids) == hf_greedy(tiny, prompt, 24)
    assert lean.for_model(tiny).layers[0][0].gemv is kernel  # type: ignore[union-attr]


def test_the_kernel_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATLAB_KERNEL_DIR", "/somewhere/kernels")
    assert gemv.kernel_dir() == Path("/somewhere/kernels")
    monkeypatch.delenv("STRATLAB_KERNEL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/cache")
    assert gemv.kernel_dir() == Path("/cache/stratlab/kernels")
    assert os.path.basename(gemv.SOURCE) == "gemv.c" and gemv.SOURCE.exists()


def test_bfloat16_steps_use_it_up_to_the_rows_its_instructions_pay_for(
    tiny: LoadedModel, kernel: gemv.Gemv
) -> None:
    """With AVX-512 BF16 pair products a bf16 step uses the kernel up to 5 rows; when
    bf16 has to be widened first, up to 2."""
    model = copy.deepcopy(tiny.model).to(torch.bfloat16)
    step = lean.LlamaStep(model)
    expected = lean.GEMV_ROWS["torch.bfloat16"] if kernel.bf16_pairs else 2
    assert {p.gemv_rows for layer in step.layers for p in layer} == {expected}
    assert step.head.gemv_rows == expected
    assert kernel.bf16_pairs == ("avx512_bf16" in Path("/proc/cpuinfo").read_text().split())


def test_a_compiler_that_hangs_is_a_build_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    real_run = subprocess.run

    def hanging(command: list[str], **options: Any) -> Any:
        if "--version" in command:
            return real_run(command, **options)
        raise subprocess.TimeoutExpired(command, options.get("timeout", 0))

    monkeypatch.setattr(gemv.subprocess, "run", hanging)
    with pytest.raises(RuntimeError, match="did not finish"):
        gemv.build(tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_the_whole_step_serves_attention_wider_than_the_layers(
    kernel: gemv.Gemv, dtype: torch.dtype
) -> None:
    """A Llama whose heads x head_dim (256) exceed both its hidden (64) and intermediate
    (96) sizes: the compiled step's buffers hold the attention output, and its logits and
    cache writes are the eager step's."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, head_dim=32, max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).eval().to(dtype)
    step = lean.LlamaStep(model)
    assert step.fused_rows >= 2
    results = []
    for fused in (True, False):
        cache = RowCache(model, 2, 12, dtype=dtype, device=torch.device("cpu"))
        for row, ids in enumerate(([5, 6, 7, 8], [9, 10, 11])):
            prefilled, _ = step.prefill(ids)
            cache.write_prompt(slice(row, row + 1), prefilled, 4 - len(ids))
        cache.column = 4
        if not fused:
            step.fused_rows = 0
        with torch.inference_mode():
            logits = step(cache, torch.tensor([[12], [13]]), torch.tensor([[4], [3]]), 0, 2)
        results.append((logits.float(), cache.buffer[:, :, :, 4].float()))
    (fused_logits, fused_cache), (eager_logits, eager_cache) = results
    tolerance = 1e-4 if dtype == torch.float32 else 0.05 * float(eager_logits.abs().max())
    torch.testing.assert_close(fused_logits, eager_logits, rtol=0, atol=tolerance)
    torch.testing.assert_close(fused_cache, eager_cache, rtol=0, atol=tolerance)
