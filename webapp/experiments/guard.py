"""The one check every worker-side write of an experiment's rows goes through.

A cancel is a conditional UPDATE of the experiment's row (``lifecycle.cancel_experiment``).
Samples, verdicts, pass matrices and figures are written inside ``unless_cancelled``,
which locks that row for its transaction and says whether the experiment still takes
writes. So a cancel lands either before such a transaction (which then writes nothing)
or after it commits: no row is written once the cancel is acknowledged. On PostgreSQL
the lock is ``SELECT ... FOR UPDATE`` (the cancel's UPDATE waits for it, and a locker
that waited re-reads the row); SQLite's IMMEDIATE transactions (``settings.DATABASES``)
hold the database's write lock from their first statement, which serialises the same way.

Keep the work inside short (bulk inserts): the lock is held until it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from webapp.experiments.models import Experiment


@contextmanager
def unless_cancelled(experiment_id: int) -> Iterator[bool]:
    """A transaction for writing the experiment's rows, and whether to write them: False
    once it is cancelled or deleted. A failed experiment still keeps what its tasks
    finish (its pools are shared and reusable), as before."""
    with transaction.atomic():
        statuses = list(
            Experiment.objects.select_for_update()
            .filter(pk=experiment_id)
            .values_list("status", flat=True)
        )
        yield bool(statuses) and statuses[0] != Experiment.Status.CANCELLED
