"""What the runbook notebooks call: `start` turns the notebook's parameters into a `Run`,
and every later cell is one call on it.

The run keeps the notebook's globals, not a copy: each cell reads the parameters again, and
when they changed (the parameters cell was edited and run again) the run starts over from
the new values, keeping the panels the cells defined. So, as everywhere in Jupyter,
re-running the parameters cell and then any later cell uses the new values."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from runbook_lib.contract.alerts import route
from runbook_lib.contract.clock import utc
from runbook_lib.contract.config import MEMORY_LIMIT_BYTES, Settings
from runbook_lib.evidence import panels
from runbook_lib.notebook import by_hand
from runbook_lib.notebook.display import tables_without_row_numbers
from runbook_lib.notebook.parameters import CONTRACT, ParameterError
from runbook_lib.notebook.session import Session
from runbook_lib.notebook.steps import STEPS

# What a change of the parameters resets: everything the run found, not the cells' panels.
KEPT = {"runbook", "namespace", "panel_defs"}


def _fresh(method: Callable) -> Callable:
    """A cell's call: the parameters are read again first."""

    @functools.wraps(method)
    def cell(self: Run, *args: Any, **kwargs: Any) -> Any:
        self.refresh()
        return method(self, *args, **kwargs)

    return cell


class Run(Session):
    def step(self, name: str) -> None:
        """One investigation step of the runbook (see `steps.STEPS`)."""
        self.refresh()
        STEPS[name](self)

    header = _fresh(Session.header)
    assess = _fresh(Session.assess)
    charts = _fresh(Session.charts)
    panel = _fresh(Session.panel)
    causes = _fresh(Session.causes)
    diagnosis = _fresh(Session.diagnosis)
    resolution = _fresh(Session.resolution)
    mitigate = _fresh(Session.mitigate)
    message = _fresh(Session.message)
    post_checks = _fresh(Session.post_checks)
    summary = _fresh(Session.summary)

    def refresh(self) -> None:
        """Start over from the notebook's parameters if they changed since the last cell."""
        if self.namespace is None:
            return
        given = given_parameters(self.namespace)
        if given == self.given:
            return
        state = derive(self.runbook, given)
        for f in fields(self):
            if f.name not in KEPT and f.name not in state:
                setattr(self, f.name, f.default_factory() if callable(f.default_factory) else
                        f.default)  # fmt: skip
        for key, value in state.items():
            setattr(self, key, value)


def start(runbook: str, namespace: dict[str, Any]) -> Run:
    """The run of `runbook`, reading its parameters from `namespace` (the notebook's
    `globals()`) at every cell."""
    tables_without_row_numbers()
    given = given_parameters(namespace)
    return Run(runbook=runbook, namespace=namespace, **derive(runbook, given))


def given_parameters(namespace: dict[str, Any]) -> dict[str, Any]:
    """The contract's parameters as the notebook holds them now, checked against the types
    its parameters cell declares (`name: type = ...`, kept by Python in `__annotations__`)."""
    declared = namespace.get("__annotations__") or {}
    given = {}
    for name in CONTRACT:
        if name not in namespace:
            continue
        value = namespace[name]
        kind = declared.get(name)
        if kind is not None:
            try:
                value = TypeAdapter(kind).validate_python(value)
            except ValidationError as exc:
                shown = getattr(kind, "__name__", None) if not hasattr(kind, "__args__") else kind
                raise ParameterError(
                    f"parameter {name} = {json.dumps(value, default=str)} is not {shown or kind}"
                    f" ({exc.errors()[0]['msg']}): fix it in the parameters cell"
                ) from None
        given[name] = value
    return given


def derive(runbook: str, given: dict[str, Any]) -> dict[str, Any]:
    """What a run is from its parameters: the alert (Alertmanager's firing one when opened by
    hand), its times, the series that are its, where Prometheus answers from."""
    p = {**given, "labels": dict(given.get("labels") or {})}
    if not p.get("alert_name") and p["labels"].get("alertname"):
        p["alert_name"] = p["labels"]["alertname"]
    at = utc(p.get("at") or None)
    exploring, found, gaps = "", "", []
    if not p.get("alert_name"):
        lookup = by_hand.firing(p.get("alertmanager_url") or "", runbook, p["labels"], at,
                                datetime.now(UTC))  # fmt: skip
        if lookup.params:
            p.update(lookup.params)
            found = (f"Opened by hand: the alert of this runbook Alertmanager ({lookup.url}) "
                     "holds firing for this instance.")  # fmt: skip
        else:
            p["alert_name"] = ""
            exploring = by_hand.exploring_md(runbook, p["labels"].get("instance", ""), at, lookup)
            if lookup.error:
                gaps.append(f"opened by hand: {lookup.error}; set alert_name to examine an alert")
    starts_at = utc(p.get("starts_at") or at.isoformat())
    ends = p.get("ends_at") or ""
    ends_at = utc(ends) if ends and not str(ends).startswith("0001") else None
    scope = panels.Scope.from_labels(
        p["labels"],
        node_instance=p.get("node_instance") or None,
        memory_limit_bytes=float(p.get("memory_limit_bytes") or MEMORY_LIMIT_BYTES),
    )
    if not p.get("log_file") and not p.get("container"):
        p["log_file"] = local_stack_log(scope.instance)
    if p["alert_name"] and route(p["alert_name"]) != runbook and runbook != "triage":
        gaps.append(f"alert {p['alert_name']} routes to {route(p['alert_name'])}, not {runbook}")
    return {"p": p, "given": given, "at": at, "starts_at": starts_at, "ends_at": ends_at,
            "scope": scope, "prom": _prometheus(p), "gaps": gaps, "exploring": exploring,
            "found_by_hand": found}  # fmt: skip


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
