"""The receiver's own /metrics: alerts received and duplicated, webhooks refused by reason,
runs finished by status with their duration, deliveries by outcome, and the queue's depth
and oldest wait (read from the index when scraped).

Runs are counted from the index, not by the process that ran them: in distributed mode they
finish in Celery workers, which serve no /metrics. At each scrape the receiver reads the
runs filed since its last look and adds them to its counters, so `runbook_runs_total` is a
true counter in both modes (it starts at 0 with the process, like any other, and retention
deleting old runs never makes it go down). Two receivers on one index each count every run:
aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import finished_since

DURATION_BUCKETS = (0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900)
# Why a webhook was refused: a missing or wrong bearer token (401), a body over the limit
# (413), a body that is not Alertmanager's JSON (422), the index not writable (503).
REFUSALS = ("token", "too_large", "invalid", "unavailable")
DELIVERY_OUTCOMES = ("sent", "retried", "given_up")
# A run filed this long before a run already counted is still found: transactions commit
# out of order, and machines' clocks differ a little.
OVERLAP_S = 600.0


class FinishedRuns(Collector):
    """`runbook_runs_total{runbook,kind,status}` and `runbook_run_duration_seconds{runbook}`
    over the runs the index files as done after `since` (this process's start)."""

    def __init__(self, index: Index, since: float) -> None:
        self.index, self.since = index, since
        self.counted: dict[int, float] = {}  # run id -> finished_at, within the overlap
        self.newest = since
        self.lock = threading.Lock()
        self.runs = Counter(
            "runbook_runs", "Runs finished, by runbook, kind and the record's status.",
            ["runbook", "kind", "status"], registry=None,
        )  # fmt: skip
        self.duration = Histogram(
            "runbook_run_duration_seconds", "Wall time of a run, from its start to its filing.",
            ["runbook"], buckets=DURATION_BUCKETS, registry=None,
        )  # fmt: skip

    def catch_up(self) -> None:
        """Count the runs filed since the last look (none while the index cannot be read:
        they are counted at the next scrape that can)."""
        with self.lock:
            try:
                with self.index.read() as conn:
                    found = finished_since(conn, max(self.since, self.newest - OVERLAP_S))
            except SQLAlchemyError:
                return
            for run in found:
                if run.run_id in self.counted:
                    continue
                self.counted[run.run_id] = run.finished_at
                self.runs.labels(run.runbook, run.kind, run.status).inc()
                self.duration.labels(run.runbook).observe(run.seconds)
                self.newest = max(self.newest, run.finished_at)
            horizon = self.newest - OVERLAP_S
            self.counted = {i: at for i, at in self.counted.items() if at >= horizon}

    def collect(self) -> Iterator[Metric]:
        self.catch_up()
        yield from self.runs.collect()
        yield from self.duration.collect()


@dataclass
class Metrics:
    registry: CollectorRegistry
    received: Counter
    duplicates: Counter
    refused: Counter
    deliveries: Counter
    runs: FinishedRuns

    @classmethod
    def create(cls, index: Index, targets: Iterable[str] = (), now: float | None = None) -> Metrics:
        """The receiver's metrics; `targets` are notify.yml's, whose delivery counters start
        at 0 (so that `increase()` sees their first failure)."""
        reg = CollectorRegistry()
        depth = Gauge("runbook_queue_depth", "Runs due and waiting for a worker.", registry=reg)
        depth.set_function(lambda: _queue(index)[0])
        oldest = Gauge(
            "runbook_queue_oldest_age_seconds",
            "How long the oldest due run has waited.",
            registry=reg,
        )
        oldest.set_function(lambda: _queue(index)[1])
        refused = Counter(
            "runbook_webhooks_refused",
            "Webhooks refused, by reason: token, too_large, invalid, unavailable.",
            ["reason"],
            registry=reg,
        )
        for reason in REFUSALS:
            refused.labels(reason)
        deliveries = Counter(
            "runbook_deliveries",
            "Notification deliveries by target and outcome: sent, retried, given_up.",
            ["target", "outcome"],
            registry=reg,
        )
        for target in targets:
            for outcome in DELIVERY_OUTCOMES:
                deliveries.labels(target, outcome)
        runs = FinishedRuns(index, time.time() if now is None else now)
        reg.register(runs)
        return cls(
            registry=reg,
            received=Counter(
                "runbook_alerts_received",
                "Alerts received, by alert status.",
                ["status"],
                registry=reg,
            ),
            duplicates=Counter(
                "runbook_alerts_duplicate",
                "Alerts received again (same fingerprint and startsAt), not run again.",
                registry=reg,
            ),
            refused=refused,
            deliveries=deliveries,
            runs=runs,
        )

    def delivered(self, target: str, outcome: str) -> None:
        """The notification sender's `on_delivery`: one delivery's outcome."""
        self.deliveries.labels(target, outcome).inc()


def _queue(index: Index) -> tuple[float, float]:
    """The queue's depth and oldest wait; NaN while the index cannot be read, so that
    /metrics still answers (and counts the webhooks refused meanwhile)."""
    try:
        return index.queue_stats()
    except SQLAlchemyError:
        return float("nan"), float("nan")
