"""The receiver's own /metrics: alerts received and duplicated, runs by outcome and their
duration, and the queue's depth and oldest wait (read from the index when scraped)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from runbook_lib.records.index import Index, Job

DURATION_BUCKETS = (0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900)


@dataclass
class Metrics:
    registry: CollectorRegistry
    received: Counter
    duplicates: Counter
    runs: Counter
    duration: Histogram

    @classmethod
    def create(cls, index: Index) -> Metrics:
        reg = CollectorRegistry()
        depth = Gauge("runbook_queue_depth", "Runs due and waiting for a worker.", registry=reg)
        depth.set_function(lambda: index.queue_stats()[0])
        oldest = Gauge(
            "runbook_queue_oldest_age_seconds",
            "How long the oldest due run has waited.",
            registry=reg,
        )
        oldest.set_function(lambda: index.queue_stats()[1])
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
            runs=Counter(
                "runbook_runs",
                "Runs finished, by runbook and outcome.",
                ["runbook", "outcome"],
                registry=reg,
            ),
            duration=Histogram(
                "runbook_run_duration_seconds",
                "Wall time of a run, from claim to record.",
                ["runbook"],
                buckets=DURATION_BUCKETS,
                registry=reg,
            ),
        )

    def observe_run(self, job: Job, summary: dict, seconds: float) -> None:
        self.runs.labels(job.runbook, summary.get("status", "failed")).inc()
        self.duration.labels(job.runbook).observe(seconds)
