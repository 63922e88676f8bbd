"""``manage.py export_experiment ID --format csv|json|jsonl|humaneval --what
samples|problems|metrics [--strategy POSITION] [--output FILE]``: the export the
experiment page offers, streamed to standard output or a file.

Whoever runs ``manage.py`` reads the database directly, so no team check applies here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.experiments.exports import FORMATS, WHATS, export
from webapp.experiments.models import Experiment


class Command(BaseCommand):
    help = "Export an experiment's samples, per-problem results or metrics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("experiment_id", type=int, metavar="ID")
        parser.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
        parser.add_argument("--what", choices=WHATS, default="samples")
        parser.add_argument(
            "--strategy", type=int, default=None, metavar="POSITION",
            help="humaneval samples: the strategy whose pool is written (default: the first)",
        )
        parser.add_argument("--output", "-o", default=None, metavar="FILE",
                            help="write here instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        experiment = (Experiment.objects.select_related("dataset", "team")
                      .filter(pk=options["experiment_id"]).first())
        if experiment is None:
            raise CommandError(f"No experiment with id {options['experiment_id']}.")
        try:
            out = export(experiment, options["what"], options["fmt"],
                         strategy=options["strategy"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["output"] is None:
            self._to_stdout(out.chunks)
            return
        target = Path(options["output"])
        written = self._to_file(out.chunks, target)
        self.stderr.write(f"Wrote {written:,} bytes to {target}.")

    def _to_stdout(self, chunks: Any) -> None:
        # Bytes straight to the process's stdout when it is one; through the wrapper
        # (text) when a caller gave its own stream, as call_command(stdout=...) does.
        stream = getattr(self.stdout, "_out", None)
        raw = getattr(stream, "buffer", None) if stream is sys.stdout else None
        for chunk in chunks:
            if raw is not None:
                raw.write(chunk)
            else:
                self.stdout.write(chunk.decode(), ending="")
        if raw is not None:
            raw.flush()

    @staticmethod
    def _to_file(chunks: Any, target: Path) -> int:
        """Stream into the file; a failed export removes what it had written."""
        if not target.parent.is_dir():
            raise CommandError(f"--output: no such folder {target.parent}.")
        written = 0
        try:
            with target.open("wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    written += len(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return written
