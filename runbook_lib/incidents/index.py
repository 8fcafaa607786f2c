"""The incident index, which is also the durable run queue: one database (storage/database.py:
SQLite by default, PostgreSQL when several receivers and workers share it) used by the run
queue (incidents/queue.py) and the incidents repository (incidents/repository.py).

`Index` is what the receiver, the workers, the pages and the command line hold: the database
itself, with the queue's and the repository's public methods under their own names, so a
caller need not know which of the two answers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook_lib.contract.settings import CORRELATION_WINDOW_S
from runbook_lib.incidents.queue import AGE_BOUND_S, RunQueue
from runbook_lib.incidents.repository import Incidents
from runbook_lib.storage.database import Database


def _by(part: str, method: Callable) -> Callable:
    """`method` of the index's `part` (queue or repository), as a method of the index."""

    @functools.wraps(method)
    def call(self: Index, *args: Any, **kwargs: Any) -> Any:
        return method(getattr(self, part), *args, **kwargs)

    return call


class Index(Database):
    """The incident index at a SQLite file `path`, or at a database `url`.
    `correlation_window`: see `Incidents`; `age_bound`: see `RunQueue`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        url: str | None = None,
        correlation_window: float = CORRELATION_WINDOW_S,
        age_bound: float = AGE_BOUND_S,
    ) -> None:
        super().__init__(path, url=url)
        self.queue = RunQueue(self, age_bound=age_bound)
        self.repository = Incidents(self, self.queue, correlation_window=correlation_window)

    # the run queue: workers claim and finish runs; the sweeper re-sends lost tasks
    claim = _by("queue", RunQueue.claim)
    request = _by("queue", RunQueue.request)
    finish = _by("queue", RunQueue.finish)
    defer = _by("queue", RunQueue.defer)
    begin = _by("queue", RunQueue.begin)
    in_flight = _by("queue", RunQueue.in_flight)
    requeue = _by("queue", RunQueue.requeue)
    queue_stats = _by("queue", RunQueue.queue_stats)
    dispatched = _by("queue", RunQueue.dispatched)
    undispatched = _by("queue", RunQueue.undispatched)

    # the incidents: alerts accepted, reconciled, acted on, and read
    accept = _by("repository", Incidents.accept)
    accept_runs = _by("repository", Incidents.accept_runs)
    close_stale = _by("repository", Incidents.close_stale)
    add_manual = _by("repository", Incidents.add_manual)
    act = _by("repository", Incidents.act)
    may_act = _by("repository", Incidents.may_act)
    mark_mitigated = _by("repository", Incidents.mark_mitigated)
    by_fingerprint = _by("repository", Incidents.by_fingerprint)
    incidents = _by("repository", Incidents.incidents)
    incident = _by("repository", Incidents.incident)
    past_incidents = _by("repository", Incidents.past_incidents)
    latest = _by("repository", Incidents.latest)
    run_of = _by("repository", Incidents.run_of)
