"""What only the worker knows about a run, for the reproducibility manifest
(``webapp.experiments.manifest.record_runtime``): library versions, device and dtype,
the model file's sha256 and the chat template's hash.

Hashing a model file reads all of it, so digests are kept per process, keyed by each
file's path, size and modification time: a worker hashes a model once, and again only
when the file changes. Nothing here imports Django or Celery.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workers.runtime.models import LoadedModel

logger = logging.getLogger(__name__)

_BLOCK = 4 * 1024 * 1024
#: Files of a Hugging Face model directory that hold its weights.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")

_digests: dict[tuple[tuple[str, int, int], ...], str] = {}
_lock = threading.Lock()


def model_files(loaded: LoadedModel) -> tuple[Path, ...]:
    """The file(s) the model's weights come from: its GGUF file (or parts, in order), or
    the weight files of its directory."""
    spec = loaded.spec
    if spec.source == "gguf":
        return spec.gguf_files
    directory = Path(spec.locate)
    return tuple(sorted(p for p in directory.iterdir()
                        if p.is_file() and p.suffix in WEIGHT_SUFFIXES))


def files_sha256(paths: Sequence[Path]) -> str:
    """sha256 of the files' bytes one after another (a model split in parts hashes as
    the joined file), computed once per process for unchanged files."""
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    with _lock:
        if key in _digests:
            return _digests[key]
        digest = hashlib.sha256()
        for path in paths:
            with path.open("rb") as handle:
                for block in iter(lambda h=handle: h.read(_BLOCK), b""):
                    digest.update(block)
        _digests[key] = digest.hexdigest()
        return _digests[key]


def chat_template_sha256(loaded: LoadedModel) -> str | None:
    """sha256 of the tokenizer's chat template (None without one)."""
    template = getattr(loaded.tokenizer, "chat_template", None)
    if not template:
        return None
    text = template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def runtime_facts(loaded: LoadedModel, draft: LoadedModel | None = None) -> dict[str, Any]:
    """The worker's facts for a run on ``loaded`` (and its draft model, if any)."""
    import torch
    import transformers

    try:
        files = model_files(loaded)
        digest = files_sha256(files) if files else None
    except OSError as exc:  # the file went away since loading: say so, do not fail the run
        logger.warning("cannot hash the files of %s: %s", loaded.name, exc)
        files, digest = (), None
    facts: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "model": loaded.name,
        "model_source": loaded.spec.source,
        "model_package": loaded.spec.pip_package,
        "model_files": [p.name for p in files],
        "model_sha256": digest,
        "chat_template_sha256": chat_template_sha256(loaded),
    }
    if loaded.device.type == "cuda":
        facts["cuda"] = torch.version.cuda
        facts["gpu"] = torch.cuda.get_device_name(loaded.device)
    if draft is not None:
        facts["draft_model"] = draft.name
        try:
            draft_files = model_files(draft)
            facts["draft_model_sha256"] = files_sha256(draft_files) if draft_files else None
        except OSError:
            facts["draft_model_sha256"] = None
    return facts
