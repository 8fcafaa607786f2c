"""Distributed mode's bookkeeping in the index: which runs' Celery tasks were sent, and
which runs no worker will get without a new task (mixed into records.index.Index, which
provides `_tx` and `_read`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa

from runbook_lib.records.jobs import Queued
from runbook_lib.records.migrations.schema import RUNS as runs_t


class Dispatch:
    def dispatched(self, run_ids: Sequence[int], now: float | None = None) -> None:
        """Note that tasks were sent for these runs (the sweeper leaves them alone a while)."""
        if not run_ids:
            return
        now = time.time() if now is None else now
        with self._tx() as conn:
            conn.execute(
                sa.update(runs_t).where(runs_t.c.id.in_(run_ids)).values(dispatched_at=now)
            )

    def undispatched(
        self, grace_s: float, lease_s: float, *, resend_sent: bool, now: float | None = None
    ) -> list[Queued]:
        """Runs that no worker will get without a new task: due for `grace_s` and never
        sent; with `resend_sent`, also those sent but not started by then (the caller knows
        the broker's queue is empty, so their tasks are lost); and runs whose worker's lease
        expired."""
        now = time.time() if now is None else now
        c = runs_t.c
        waited = (c.state == "queued") & (c.not_before <= now - grace_s)
        sent_long_ago = c.dispatched_at < now - grace_s if resend_sent else sa.false()
        lost = waited & (c.dispatched_at.is_(None) | sent_long_ago)
        stale = (c.state == "running") & (c.started_at < now - lease_s)
        with self._read() as conn:
            rows = conn.execute(sa.select(c.id, c.kind, c.not_before).where(lost | stale))
            return [Queued(r.id, r.kind, r.not_before) for r in rows.all()]
