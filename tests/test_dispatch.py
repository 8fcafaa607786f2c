"""The receiver's side of the distributed mode, on Celery's in-memory broker (kombu's
`memory://` transport) and a SQLite index: a run is noted as sent before its task goes out,
so a worker that takes the task at once finds the run unlocked; a run whose task could not
be sent is left for the sweep as never sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents.index import Index
from runbook_lib.service.distributed import TASK, CeleryDispatcher, Settings, make_app
from runbook_lib.service.workers import RunConfig

T0 = 1_800_000_000.0


def accepted(index: Index, *fingerprints: str) -> list:
    alerts = [Alert(status="firing", startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
                    labels={"alertname": "GgenMcpHighErrorRate", "instance": f"h:{fp}",
                            "severity": "critical"}, fingerprint=fp)
              for fp in fingerprints]  # fmt: skip
    return index.accept_runs(alerts, 0, now=T0)[1]


@pytest.fixture
def dispatcher(tmp_path: Path) -> CeleryDispatcher:
    settings = Settings(database="", broker="memory://", run=RunConfig(output_dir=tmp_path))
    return CeleryDispatcher(make_app(settings), Index(tmp_path / "index.sqlite"))


def never_sent(index: Index) -> list[int]:
    """Runs the sweep would send as never sent (a broker queue still draining)."""
    return sorted(q.run_id for q in index.undispatched(0, 60, resend_sent=False, now=T0 + 120))


def test_a_run_is_noted_as_sent_before_its_task_leaves(dispatcher: CeleryDispatcher) -> None:
    """A worker on PostgreSQL claims with FOR UPDATE SKIP LOCKED: a run the receiver was
    still updating after the send was passed over, and waited a minute for the sweep."""
    runs = accepted(dispatcher.index, "aaaa", "bbbb")
    seen_when_sent = []
    send = dispatcher.app.send_task

    def watched(name, args, **kw):
        seen_when_sent.append((name, args, never_sent(dispatcher.index)))
        return send(name, args=args, **kw)

    dispatcher.app.send_task = watched  # type: ignore[method-assign]
    dispatcher.send(runs)
    assert seen_when_sent == [(TASK, [runs[0].run_id], []), (TASK, [runs[1].run_id], [])]
    assert never_sent(dispatcher.index) == []


def test_a_run_whose_task_was_not_sent_is_left_to_the_sweep(dispatcher: CeleryDispatcher) -> None:
    first, second, third = accepted(dispatcher.index, "aaaa", "bbbb", "cccc")
    send = dispatcher.app.send_task

    def broker_gone_after_one(name, args, **kw):
        if args != [first.run_id]:
            raise ConnectionError("the broker went away")
        return send(name, args=args, **kw)

    dispatcher.app.send_task = broker_gone_after_one  # type: ignore[method-assign]
    dispatcher.send([first, second, third])
    assert never_sent(dispatcher.index) == [second.run_id, third.run_id]
