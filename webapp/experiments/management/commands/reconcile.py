"""``manage.py reconcile``: send again the work of experiments whose task died.

Every ``STRATLAB_RECONCILE_SECONDS`` (``--interval``) it runs one sweep of
``experiments.recovery.reconcile`` and prints what it did; ``--once`` runs one sweep
and exits. ``manage.py up`` runs it beside the workers, and the compose file as the
``reconciler`` service. It needs the database and the broker, not a worker: a sweep
is not queued behind a busy one. Several can run at once (each resend is a
conditional UPDATE), though one is enough.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections
from kombu.exceptions import OperationalError as BrokerError

from webapp.experiments.recovery import reconcile


class Command(BaseCommand):
    help = "Send again the missing work of experiments whose task died (a loop; --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run one sweep and exit.")
        parser.add_argument(
            "--interval", type=float, default=None,
            help="Seconds between sweeps (default STRATLAB_RECONCILE_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] or float(settings.STRATLAB_RECONCILE_SECONDS)
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        if not options["once"]:
            signal.signal(signal.SIGTERM, stop)
            self.stdout.write(f"Reconciling every {interval:g} s "
                              f"(stale after {settings.STRATLAB_STALE_SECONDS} s, "
                              f"{settings.STRATLAB_MAX_ATTEMPTS} attempts per chunk).")
        while True:
            started = time.monotonic()
            close_old_connections()
            try:
                for line in reconcile():
                    self.stdout.write(line)
            except (DatabaseError, BrokerError) as exc:
                # The database or the broker is down: say so, and try again next time.
                self.stderr.write(f"sweep failed: {exc}")
            self.stdout.flush()
            if options["once"]:
                return
            try:
                while not stopping and time.monotonic() - started < interval:
                    time.sleep(0.2)
            except KeyboardInterrupt:
                return
            if stopping:
                return
