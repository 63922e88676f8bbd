"""Pass 1 of a CSV, TSV or JSONL upload a column at a time, with no Python step per row.

``columnar_content_key`` returns exactly the key the row path computes
(``content_hash(normalise_records(...))``) for the mappings it knows: a prompt column, an
optional reference (plain, or GSM8K's ``#### 42``), an id column and metadata columns,
for math, exact, regex and open-ended sets. It never reports errors: as soon as a row
would be reported (or skipped) it gives up with None, and the caller reads the file row
by row, which names every fault. Other mappings (a prompt template, multiple choice,
code, ``\\boxed{}``) always take the row path, and so does a JSONL file whose mapped
fields are not all strings (a number, a null, a missing field).

Each batch of rows becomes one array of canonical JSON rows (built by pyarrow.compute,
JSON escapes included), whose bytes are hashed at once. The next batch is read, checked
and parsed (``parsers.iter_batches``) on a second thread meanwhile: numpy, pyarrow and
hashlib do their work without the GIL.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from webapp.datasets.answers import gsm8k_answer
from webapp.datasets.mapping import ColumnMapping, content_digest
from webapp.datasets.parsers import NeedsRowByRow, iter_batches

__all__ = ["columnar_content_hash", "columnar_content_key", "has_columnar_path"]

_KINDS = ("math", "exact", "regex", "open")
_ANSWER_FORMATS = ("plain", "gsm8k")
# What json.dumps escapes inside a string: the control characters, '"' and backslash;
# each is one byte in UTF-8 that no multi-byte character contains.
_ESCAPES = json.encoder.ESCAPE_DCT
_BACKSLASH = ord("\\")


def has_columnar_path(mapping: ColumnMapping) -> bool:
    """Whether ``mapping`` can be applied a column at a time."""
    return (mapping.kind in _KINDS and bool(mapping.prompt)
            and mapping.answer_format in _ANSWER_FORMATS)


def columnar_content_key(path: Path | str, fmt: str, mapping: ColumnMapping, kind: str, *,
                         max_rows: int) -> str | None:
    """The content key of a CSV, TSV or JSONL file whose rows are all good under
    ``mapping``; None when the file must be read row by row (another format or mapping,
    a bad or blank row, too many rows, text the two readers could read differently)."""
    if fmt not in ("csv", "tsv", "jsonl") or not has_columnar_path(mapping):
        return None
    batches = iter_batches(Path(path), fmt, max_rows=max_rows)
    try:
        with ThreadPoolExecutor(1) as reader:
            return columnar_content_hash(_read_ahead(batches, reader), mapping, kind)
    except NeedsRowByRow:
        return None
    finally:
        batches.close()


def _read_ahead(batches: Iterator[pa.RecordBatch], reader: ThreadPoolExecutor
                ) -> Iterator[pa.RecordBatch]:
    """``batches``, each read on ``reader`` while the one before is hashed."""
    coming = reader.submit(next, batches, None)
    while (batch := coming.result()) is not None:
        coming = reader.submit(next, batches, None)
        yield batch


def columnar_content_hash(batches: Iterable[pa.RecordBatch], mapping: ColumnMapping,
                          kind: str) -> str:
    """``content_hash`` of the rows in ``batches`` (string columns) under ``mapping``;
    ``NeedsRowByRow`` at the first row ``normalise`` would report."""
    if not has_columnar_path(mapping):
        raise ValueError(f"the {mapping.kind} mapping has no columnar path")
    digest = content_digest(mapping, kind)
    ids: list[pa.Array] = []
    for batch in batches:
        prompt = _column(batch, mapping.prompt)
        _require_text(prompt)
        metadata: dict[str, pa.Array | None] = {
            column: _column(batch, column) if column in batch.schema.names
            and not pa.types.is_null(batch.schema.field(column).type) else None
            for column in mapping.metadata
        }
        if mapping.id:
            ids.append(pc.utf8_trim_whitespace(_column(batch, mapping.id)))
            metadata["id"] = ids[-1]
            if _shortest(ids[-1]) == 0:
                raise NeedsRowByRow
        # Each row as json.dumps([prompt, answer, metadata], sort_keys=True, ...) writes
        # it, after the "\n" that content_hash puts before each row.
        pieces: list[str | pa.Array] = ['\n["', _json_text(prompt), '","',
                                        _json_text(_answer(batch, mapping)), '",{']
        for number, key in enumerate(sorted(metadata)):
            pieces.append(("," if number else "") + json.dumps(key, ensure_ascii=False) + ":")
            value = metadata[key]
            pieces += ["null"] if value is None else ['"', _json_text(value), '"']
        pieces.append("}]")
        digest.update(_bytes(pc.binary_join_element_wise(*pieces, "")))
    if ids and pc.count_distinct(pa.chunked_array(ids)).as_py() != sum(map(len, ids)):
        raise NeedsRowByRow  # the row path lists each repeated id
    return digest.hexdigest()


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    """The column, if it holds a string on every row (a JSONL field may hold a number,
    whose text json.dumps writes otherwise, or be null or missing on some rows)."""
    if name not in batch.schema.names:
        raise NeedsRowByRow  # "is missing" on every row
    column = batch.column(name)
    if not pa.types.is_string(column.type) or column.null_count:
        raise NeedsRowByRow
    return column


def _require_text(column: pa.Array) -> None:
    """``NeedsRowByRow`` unless every value holds more than whitespace."""
    if _shortest(column) == 0 or pc.any(pc.utf8_is_space(column)).as_py():
        raise NeedsRowByRow


def _shortest(strings: pa.Array) -> int:
    """The length in bytes of the shortest string (0 for none)."""
    return pc.min(pc.binary_length(strings)).as_py() or 0


def _answer(batch: pa.RecordBatch, mapping: ColumnMapping) -> pa.Array | str:
    """The reference of each row, as ``mapping._answer`` gives it."""
    if not mapping.answer:
        return ""
    text = _column(batch, mapping.answer)
    required = mapping.kind != "open"
    if mapping.answer_format == "plain":
        answer = pc.utf8_trim_whitespace(text)
        if required and _shortest(answer) == 0:
            raise NeedsRowByRow  # empty, or whitespace only
        return answer
    # GSM8K: what follows the last "####" (so the text is not blank). An empty reference
    # of an open-ended set has no "####" and takes the row path too.
    parts = pc.split_pattern(text, "####", max_splits=1, reverse=True)
    if pc.min(pc.list_value_length(parts)).as_py() != 2:
        raise NeedsRowByRow
    answer = pc.utf8_trim_whitespace(pc.list_element(parts, 1))
    commas = pc.match_substring(answer, ",")
    if pc.any(commas).as_py():  # thousands separators: the few such rows in Python
        fixed = [gsm8k_answer(value) for value in pc.filter(text, commas).to_pylist()]
        answer = pc.replace_with_mask(answer, commas, pa.array(fixed, pa.string()))
    if required and _shortest(answer) == 0:
        raise NeedsRowByRow
    return answer


def _bytes(strings: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of all the strings of ``strings``, one after another."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)
    offsets = offsets[strings.offset:strings.offset + len(strings) + 1]
    data = strings.buffers()[2]
    if data is None:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]]


def _json_text(strings: pa.Array | str) -> pa.Array | str:
    """The strings as ``json.dumps(..., ensure_ascii=False)`` writes them between quotes."""
    if isinstance(strings, str):
        return json.dumps(strings, ensure_ascii=False)[1:-1]
    data = _bytes(strings)
    if not len(data):
        return strings
    # The backslash first, so that the escapes added later keep theirs.
    special = [byte for byte in (_BACKSLASH, ord('"')) if (data == byte).any()]
    if data.min() < 0x20:  # control characters: few, when any
        special += np.unique(data[data < 0x20]).tolist()
    for byte in special:
        strings = pc.replace_substring(strings, chr(byte), _ESCAPES[chr(byte)])
    return strings
