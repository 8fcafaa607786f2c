"""What the runbook notebooks call: `start` turns the notebook's parameters into a `Run`,
and every later cell is one call on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_lib.contract.alerts import route
from runbook_lib.contract.config import MEMORY_LIMIT_BYTES, Settings
from runbook_lib.evidence import panels
from runbook_lib.evidence.prom import utc
from runbook_lib.notebook.display import tables_without_row_numbers
from runbook_lib.notebook.session import PARAMS, Session
from runbook_lib.notebook.steps import STEPS


class Run(Session):
    def step(self, name: str) -> None:
        """One investigation step of the runbook (see `steps.STEPS`)."""
        STEPS[name](self)


def start(runbook: str, namespace: dict[str, Any]) -> Run:
    """The run of `runbook` from the notebook's parameters (picked out of `namespace`)."""
    tables_without_row_numbers()
    p = {k: namespace[k] for k in PARAMS if k in namespace}
    p.setdefault("labels", {})
    p.setdefault("alert_name", p["labels"].get("alertname", runbook))
    at = utc(p.get("at") or None)
    starts_at = utc(p.get("starts_at") or at.isoformat())
    ends = p.get("ends_at") or ""
    ends_at = utc(ends) if ends and not str(ends).startswith("0001") else None
    scope = panels.Scope.from_labels(
        p["labels"],
        node_instance=p.get("node_instance") or None,
        memory_limit_bytes=float(p.get("memory_limit_bytes") or MEMORY_LIMIT_BYTES),
    )
    run = Run(
        runbook,
        p,
        at,
        starts_at,
        ends_at,
        scope,
        _prometheus(p),
    )
    if not p.get("log_file") and not p.get("container"):
        p["log_file"] = local_stack_log(scope.instance)
    expected = route(p["alert_name"])
    if expected != runbook and runbook != "triage":
        run._gap(f"alert {p['alert_name']} routes to {expected}, not {runbook}")
    return run


def _prometheus(p: dict[str, Any]) -> Any:
    """Live Prometheus, or a record's saved answers; recording into the record when asked."""
    from runbook_lib.evidence.recording import client

    return client(p.get("prometheus_url") or "", replay_from=p.get("replay_from") or "",
                  snapshot_dir=p.get("snapshot_dir") or "")  # fmt: skip


def local_stack_log(instance: str | None) -> str:
    """The simulator's log when the alert is about the local stack's simulator (the notebook
    opened in JupyterLab beside `scripts/start-monitoring.sh`), read from the stack.json the
    stack writes; otherwise empty. So the defaults read logs where they exist."""
    try:
        info = json.loads((Settings().state_dir / "stack.json").read_text())
        sim = f"127.0.0.1:{int(info['ports']['ggen_mcp'])}"
        log = str(info["sim_log"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return log if instance == sim and Path(log).exists() else ""
