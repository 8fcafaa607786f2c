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

from pydantic import BaseModel, ValidationError, create_model

from runbook_lib.contract.alerts import route
from runbook_lib.contract.clock import utc
from runbook_lib.contract.config import Settings
from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES
from runbook_lib.evidence import panels
from runbook_lib.notebook import by_hand, diagnosing, fetching, messaging, resolving
from runbook_lib.notebook import header as top
from runbook_lib.notebook import summary as summarizing
from runbook_lib.notebook.display import tables_without_row_numbers
from runbook_lib.notebook.parameters import CONTRACT, ParameterError, Params
from runbook_lib.notebook.state import Session
from runbook_lib.notebook.steps import STEPS

# What a change of the parameters resets: everything the run found, not the cells' panels.
KEPT = {"runbook", "namespace", "panel_defs"}


def _cell(work: Callable) -> Callable:
    """A cell's call: the parameters are read again first, then `work(run, ...)`."""

    @functools.wraps(work)
    def cell(self: Run, *args: Any, **kwargs: Any) -> Any:
        self.refresh()
        return work(self, *args, **kwargs)

    return cell


class Run(Session):
    """What the cells call: one method per cell, each doing its work in the module named
    for it on this run's state."""

    def step(self, name: str) -> None:
        """One investigation step of the runbook (see `steps.STEPS`)."""
        self.refresh()
        STEPS[name](self)

    header = _cell(top.header)
    assess = _cell(top.assess)
    charts = _cell(top.charts)
    panel = _cell(fetching.define_panel)
    causes = _cell(diagnosing.causes)
    diagnosis = _cell(diagnosing.answer)
    resolution = _cell(resolving.resolution)
    mitigate = _cell(resolving.mitigate)
    message = _cell(messaging.message)
    post_checks = _cell(resolving.post_checks)
    summary = _cell(summarizing.show)

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
    """The contract's parameters as the notebook holds them now, checked by the model of
    its parameters cell (`name: type = ...`, kept by Python in `__annotations__`)."""
    declared = namespace.get("__annotations__") or {}
    present = {name: namespace[name] for name in CONTRACT if name in namespace}
    try:
        checked = cell_model(tuple((n, declared.get(n, Any)) for n in present))(**present)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        kind = declared[name]
        shown = kind if hasattr(kind, "__args__") else getattr(kind, "__name__", kind)
        raise ParameterError(
            f"parameter {name} = {json.dumps(present[name], default=str)} is not {shown}"
            f" ({exc.errors()[0]['msg']}): fix it in the parameters cell"
        ) from None
    return {name: getattr(checked, name) for name in present}


@functools.lru_cache(maxsize=32)
def cell_model(declared: tuple[tuple[str, Any], ...]) -> type[BaseModel]:
    """A pydantic model of the parameters as a parameters cell declares them (an undeclared
    one is taken as it is)."""
    return create_model("parameters_cell", **{name: (kind, ...) for name, kind in declared})


def derive(runbook: str, given: dict[str, Any]) -> dict[str, Any]:
    """What a run is from its parameters: the alert (Alertmanager's firing one when opened by
    hand), its times, the series that are its, where Prometheus answers from."""
    try:
        p = Params.model_validate(given)
    except ValidationError as exc:  # a notebook that declares a contract name otherwise
        raise ParameterError(f"parameter {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
                             " (runbook lint names the contract's types)") from None  # fmt: skip
    if not p.alert_name and p.labels.get("alertname"):
        p.alert_name = p.labels["alertname"]
    at = utc(p.at or None)
    exploring, found, gaps = "", "", []
    if not p.alert_name:
        lookup = by_hand.firing(p.alertmanager_url, runbook, p.labels, at, datetime.now(UTC))
        if lookup.params:
            p = p.model_copy(update=lookup.params)
            found = (f"Opened by hand: the alert of this runbook Alertmanager ({lookup.url}) "
                     "holds firing for this instance.")  # fmt: skip
        else:
            exploring = by_hand.exploring_md(runbook, p.labels.get("instance", ""), at, lookup)
            if lookup.error:
                gaps.append(f"opened by hand: {lookup.error}; set alert_name to examine an alert")
    starts_at = utc(p.starts_at or at.isoformat())
    ends_at = utc(p.ends_at) if p.ends_at and not p.ends_at.startswith("0001") else None
    scope = panels.Scope.from_labels(
        p.labels,
        node_instance=p.node_instance or None,
        memory_limit_bytes=float(p.memory_limit_bytes or MEMORY_LIMIT_BYTES),
    )
    if not p.log_file and not p.container:
        p.log_file = local_stack_log(scope.instance)
    if p.alert_name and route(p.alert_name) != runbook and runbook != "triage":
        gaps.append(f"alert {p.alert_name} routes to {route(p.alert_name)}, not {runbook}")
    return {"p": p, "given": given, "at": at, "starts_at": starts_at, "ends_at": ends_at,
            "scope": scope, "prom": _prometheus(p), "gaps": gaps, "exploring": exploring,
            "found_by_hand": found}  # fmt: skip


def _prometheus(p: Params) -> Any:
    """Live Prometheus, or a record's saved answers; recording into the record when asked."""
    from runbook_lib.evidence.recording import client

    return client(p.prometheus_url, replay_from=p.replay_from, snapshot_dir=p.snapshot_dir)


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
