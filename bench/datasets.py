"""Bench: uploading a 100,000-row dataset through the service, against pandas' parse.

Run: .venv/bin/python bench/datasets.py  [--rows 100000] [--repeat 3]

Writes a seeded GSM8K-style JSONL (``question``, ``answer`` ending in ``#### n``) and a
CSV of the same rows into a temporary folder, migrates a scratch SQLite database there,
and uploads each file the way the web app does, minus HTTP: ``stage_upload`` (copy and
hash), ``validate_upload`` (pass 1: parse, map, validate every row, hash the content)
and ``store_upload`` (pass 2: parse again and insert in batches, one transaction). In the
same run it times ``pandas.read_json(lines=True)`` / ``pandas.read_csv`` on the same
file. Each step reports rows/s and its peak RSS growth over the RSS when it started
(sampled every 5 ms from /proc, so native allocations count too); each step runs in a
forked child, so memory an earlier step freed cannot hide a later step's peak. The
children fork from a process that has imported the app (pyarrow with it) and pandas, as
a running web process has; the upload's row is read from the database before the clock
starts. pandas' parse and pass 1 run ``--repeat`` times and show the median. The parse
ratio is pass 1 (which does more than parse: it checks and normalises every row and
hashes the content) over pandas' parse; the last line gives the worse format. Pass 1
goes a column at a time (``datasets.columns``) for both files; the bench also times the
row-by-row pass that a file with a bad row, or a mapping the columnar path lacks, takes,
and requires the same key from it.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakRss:
    """The highest RSS seen while the block runs, above the RSS when it started."""

    def __enter__(self) -> PeakRss:
        self.start = rss()
        self.peak = self.start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, rss())
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _child(conn: Any, step: Callable[..., Any], setup: Callable[[], Any] | None) -> None:
    from django.db import connections

    # The step's input (the upload's row) comes from the database before the clock
    # starts: opening the child's connection is not parsing.
    prepared = setup() if setup else None
    gc.collect()
    with PeakRss() as memory:
        started = time.perf_counter()
        result = step(prepared) if setup else step()
        seconds = time.perf_counter() - started
    connections.close_all()
    conn.send((seconds, memory.growth, result))


def timed(label: str, rows: int, size: int, step: Callable[..., Any], *,
          setup: Callable[[], Any] | None = None, repeat: int = 1) -> tuple[float, Any]:
    """Run ``step`` (given what ``setup`` returns, if any) ``repeat`` times, each in a
    forked child (so no earlier step's freed memory hides its peak), and print the median
    time, rows/s and the highest peak RSS growth; ``step`` returns something small."""
    from django.db import connections

    runs = []
    for _ in range(repeat):
        connections.close_all()  # the child opens its own
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.get_context("fork").Process(target=_child,
                                                              args=(child, step, setup))
        process.start()
        runs.append(parent.recv())
        process.join()
    seconds = statistics.median(run[0] for run in runs)
    growth = max(run[1] for run in runs)
    times = f" (median of {repeat})" if repeat > 1 else ""
    print(f"  {label + times:<46} {seconds:7.3f} s  {rows / seconds:>10,.0f} rows/s  "
          f"peak RSS +{growth / MIB:6.1f} MiB ({growth / size:.2f}x the file)")
    return seconds, runs[-1][2]


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    rng = random.Random(0)
    names = ["Natalia", "Weng", "Betty", "Julie", "James", "Mark", "Albert", "Ken"]
    items = ["clips", "books", "apples", "pages", "marbles", "stickers"]
    jsonl_path, csv_path = folder / "gsm8k-100k.jsonl", folder / "gsm8k-100k.csv"
    with jsonl_path.open("w", encoding="utf-8") as jl, csv_path.open(
        "w", encoding="utf-8", newline=""
    ) as cf:
        writer = csv.writer(cf)
        writer.writerow(["question", "answer"])
        for i in range(rows):
            who, what = rng.choice(names), rng.choice(items)
            a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
            question = (f"{who} had {a} {what} in April and bought {b} more in May. "
                        f"Then {who} gave away a {c}th of the May {what}, rounded down. "
                        f"How many {what} does {who} have now? (problem {i})")
            total = a + b - b // c
            answer = (f"In May {who} had {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {what}.\n"
                      f"{who} gave away {b} // {c} = <<{b}//{c}={b // c}>>{b // c}.\n"
                      f"#### {total}")
            jl.write(json.dumps({"question": question, "answer": answer}) + "\n")
            writer.writerow([question, answer])
    return jsonl_path, csv_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of pandas' parse and of pass 1 (the median is shown)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="stratlab-bench-datasets-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["STRATLAB_DATA_DIR"] = str(folder / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import pandas as pd
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command

    from webapp.datasets.mapping import ColumnMapping
    from webapp.datasets.models import Dataset, DatasetUpload
    from webapp.datasets.parsers import ErrorLog, iter_records
    from webapp.datasets.uploads import (
        stage_upload,
        store_upload,
        validate_rows,
        validate_upload,
    )
    from webapp.teams.services import ensure_team

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    mapping = ColumnMapping(kind="math", prompt="question", answer="answer",
                            answer_format="gsm8k")
    rows = args.rows
    paths = write_files(folder, rows)
    print(f"{rows:,} rows; SQLite at {folder}")

    ratios: list[float] = []
    wholes: list[float] = []
    for path, reader in ((paths[0], "read_json"), (paths[1], "read_csv")):
        fmt = path.suffix.lstrip(".")
        size = path.stat().st_size
        # A team per file: both hold the same rows, which one team would store once.
        team = ensure_team(f"Bench {fmt}", owner=user)
        print(f"\n{path.name} ({size / MIB:.1f} MiB)")

        def with_pandas(p: Path = path, r: str = reader) -> int:
            frame = (pd.read_json(p, lines=True) if r == "read_json" else pd.read_csv(p))
            return len(frame)

        pandas_s, count = timed(f"pandas.{reader}", rows, size, with_pandas,
                                repeat=args.repeat)
        assert count == rows

        def records_only(p: Path = path, f: str = fmt) -> int:
            errors = ErrorLog(p.name)
            count = sum(1 for _ in iter_records(p, p.name, f, errors, max_rows=10 * rows))
            assert not errors, errors.messages
            return count

        parse_s, _ = timed("parse only, row by row (iter_records)", rows, size, records_only)

        def stage(p: Path = path, t: Any = team) -> int:
            with p.open("rb") as handle:
                return stage_upload(t, user, File(handle, name=p.name)).pk

        stage_s, upload_pk = timed("stage (copy + sha256)", rows, size, stage)

        def get_upload(pk: int = upload_pk) -> DatasetUpload:
            return DatasetUpload.objects.get(pk=pk)

        validate_s, key = timed(
            "pass 1: parse + validate + hash", rows, size,
            lambda upload: validate_upload(upload, mapping, "math"), setup=get_upload,
            repeat=args.repeat)
        # What the app pays for a file whose rows the columnar path does not settle
        # (a bad row, another mapping): the same pass, row by row.
        rows_s, rows_key = timed(
            "pass 1 row by row (validate_rows)", rows, size,
            lambda upload: validate_rows(upload, mapping, "math"), setup=get_upload)
        assert rows_key == key
        store_s, dataset_pk = timed(
            "pass 2: parse + store", rows, size,
            lambda upload, k=key, n=path.name: store_upload(
                upload, mapping, k, name=n, kind="math").pk, setup=get_upload)
        dataset = Dataset.objects.get(pk=dataset_pk)
        assert dataset.problems.count() == rows == dataset.row_count
        whole = stage_s + validate_s + store_s
        ratio = validate_s / pandas_s
        row_by_row = f" (row by row: {rows_s / pandas_s:.2f}x)"
        print(f"  parse only / pandas: {parse_s / pandas_s:.2f}x; parse + validate / pandas: "
              f"{ratio:.2f}x{row_by_row}; whole upload {whole:.1f} s")
        ratios.append(ratio)
        wholes.append(whole)

    print(f"\ndataset upload 100k rows: parse {max(ratios):.2f}x pandas' time, "
          f"whole upload {max(wholes):.1f} s")


if __name__ == "__main__":
    main()
