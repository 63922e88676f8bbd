"""The worker's runtime facts for the manifest: versions, device, the model's hashes."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import torch
import transformers

from workers.runtime import facts
from workers.runtime.models import LoadedModel


def test_it_reports_versions_device_and_the_models_hashes(tiny: LoadedModel) -> None:
    got = facts.runtime_facts(tiny)
    weights = sorted(Path(tiny.spec.locate).glob("*.safetensors"))
    assert weights and got["model_files"] == [p.name for p in weights]
    assert got["model_sha256"] == hashlib.sha256(
        b"".join(p.read_bytes() for p in weights)).hexdigest()
    assert got["chat_template_sha256"] == hashlib.sha256(
        tiny.tokenizer.chat_template.encode()).hexdigest()
    assert (got["torch"], got["transformers"]) == (torch.__version__, transformers.__version__)
    assert (got["device"], got["dtype"]) == ("cpu", "float32")
    assert got["model"] == "tiny-random" and got["model_source"] == "hf_dir"


def test_a_model_in_parts_hashes_as_the_joined_file(tmp_path: Path) -> None:
    parts = [tmp_path / f"model.gguf.part{i}" for i in range(3)]
    for i, part in enumerate(parts):
        part.write_bytes(bytes([i]) * (1000 + i))
    joined = b"".join(p.read_bytes() for p in parts)
    assert facts.files_sha256(parts) == hashlib.sha256(joined).hexdigest()


def test_a_files_digest_is_kept_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 64)
    first = facts.files_sha256([path])
    stat = path.stat()
    # Same size and modification time: the kept digest is used, the file not read again.
    path.write_bytes(b"b" * 64)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert facts.files_sha256([path]) == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert facts.files_sha256([path]) == hashlib.sha256(b"b" * 64).hexdigest()


def test_a_model_without_chat_template_has_no_template_hash(tiny: LoadedModel) -> None:
    tokenizer = type("Plain", (), {"chat_template": None})()
    plain = dataclasses.replace(tiny, tokenizer=tokenizer)
    assert facts.chat_template_sha256(plain) is None
