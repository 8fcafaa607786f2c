"""The service's log: one line per webhook, per run and per delivery, readable or JSON.

Every part logs through `logging.getLogger("runbook.<part>")` (`runbook.server`,
`runbook.runs`, `runbook.notify`, ...); `configure` is called once when `runbook serve` or
`runbook worker` starts and sends all of them to stderr in one format: `text`, one readable
line (`2026-12-01T21:30:02Z INFO runbook.server webhook accepted: ...`), or `json`, one
object per line with the stable keys `ts`, `level`, `logger`, `msg` and the structured
fields the line was logged with (`event`, `outcome`, `reason`, `run_id`, ...). The lines of
a run are written here, once, for the embedded pool and the Celery workers alike.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO

from runbook_lib.contract.request import RunRequest
from runbook_lib.contract.summary import Summary
from runbook_lib.incidents.jobs import Queued

FORMATS = ("text", "json")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
LINE = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_KEYS = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"}

runs = logging.getLogger("runbook.runs")


class OneLine(logging.Formatter):
    """The text format: a message or traceback that spans lines stays on one (its line
    breaks written as `\\n`), so that every line of the log starts with its time."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of `fmt` (`text` or `json`); ValueError naming the known ones."""
    if fmt == "text":
        out = OneLine(LINE, TIME_FORMAT)
    elif fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        out = JsonFormatter(LINE, datefmt=TIME_FORMAT, rename_fields=JSON_KEYS)
    else:
        raise ValueError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
    out.converter = time.gmtime  # UTC, as the `Z` says
    return out


def configure(fmt: str, stream: IO[str] | None = None) -> None:
    """Send every log line of this process to `stream` (stderr) in format `fmt`: the
    service's own at INFO, the libraries' at WARNING. Replaces earlier handlers, so that
    calling it again (a test, a worker process) never doubles a line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("runbook").setLevel(logging.INFO)
    logging.captureWarnings(True)  # a library's warning is a line of the same format


# -- the lines of a run: queued, held, started, finished -----------------------------------
def _about(run_id: int, kind: str, incident_id: int, alertname: str, record: str) -> dict:
    return {"event": "run", "run_id": run_id, "kind": kind, "incident_id": incident_id,
            "alertname": alertname, "record": record}  # fmt: skip


def run_queued(q: Queued, now: float | None = None) -> None:
    now = time.time() if now is None else now
    due = f", due in {q.not_before - now:.0f} s" if q.not_before > now + 1 else ""
    why = f" ({q.trigger})" if q.trigger else ""
    runs.info(
        "run %d queued: %s%s of incident #%d (%s)%s",
        q.run_id, q.kind, why, q.incident_id, q.alertname, due,
        extra={**_about(q.run_id, q.kind, q.incident_id, q.alertname, q.record),
               "outcome": "queued", "trigger": q.trigger, "not_before": _iso(q.not_before)},
    )  # fmt: skip


def run_held(job: RunRequest, until: float, note: str) -> None:
    runs.info(
        "run %d held until %s: %s", job.run_id, _iso(until), note,
        extra={**_about(job.run_id, job.kind, job.incident.id, job.alert.name, job.record),
               "outcome": "held", "until": _iso(until), "note": note},
    )  # fmt: skip


def run_folded(job: RunRequest, note: str) -> None:
    """A symptom's run that went instead of beginning beside its incident's first run (which
    its alert leads, unless a stronger one does: `RunQueue.begin`); not held: it is gone."""
    runs.info(
        "run %d %s", job.run_id, note,
        extra={**_about(job.run_id, job.kind, job.incident.id, job.alert.name, job.record),
               "outcome": "folded", "note": note},
    )  # fmt: skip


def run_started(job: RunRequest) -> None:
    runs.info(
        "run %d started: %s of incident #%d (%s, runbook %s), attempt %d, %.1f s in the queue",
        job.run_id, job.kind, job.incident.id, job.alert.name, job.runbook, job.queue.attempts,
        job.queue.waited_s,
        extra={**_about(job.run_id, job.kind, job.incident.id, job.alert.name, job.record),
               "outcome": "started", "runbook": job.runbook, "attempt": job.queue.attempts,
               "queued_s": round(job.queue.waited_s, 3)},
    )  # fmt: skip


def run_finished(job: RunRequest, summary: Summary, seconds: float) -> None:
    """A run is filed in the index: its record's status, top cause and duration."""
    status, cause = summary.status, summary.top_cause
    said = f"top cause {cause}" if cause else summary.error or "no likely cause"
    level = logging.INFO if status in ("completed", "degraded") else logging.WARNING
    runs.log(
        level, "run %d finished: %s in %.1f s (%s), record %s",
        job.run_id, status, seconds, said, job.record,
        extra={**_about(job.run_id, job.kind, job.incident.id, job.alert.name, job.record),
               "outcome": "finished", "status": status, "duration_s": round(seconds, 3),
               "top_cause": cause},
    )  # fmt: skip


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime(TIME_FORMAT)
