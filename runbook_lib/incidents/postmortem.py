"""Post-mortem drafts of an incident (the runbook's "Document" and "Post-mortem").

`for_incident` writes the draft of an incident in the index: its snapshot (every alert,
escalation, run and operator action, with the times Prometheus still has of the alerts
going pending; incidents/timeline.py) is kept as `incident.json`, and its records give the
diagnosis, the resolution as the run filled it and the checks of the verification; the key
charts are redrawn from each record's saved data, so the draft can be written after
Prometheus has dropped the series. `write` runs `notebooks/postmortem.ipynb` with Papermill
and files it like a record: `.ipynb`, `.html`, `.md`, and `postmortem.json` naming its
sources (retention keeps those). Given records alone, the incident is the index's beside
them, else what the records say of it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import Incident
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.contract.summary import Summary
from runbook_lib.execution import kernels, workdirs
from runbook_lib.incidents import timeline
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import best_finding
from runbook_lib.notebook.postmortem import Draft
from runbook_lib.records import record
from runbook_lib.storage.retention import POSTMORTEM_MANIFEST

NOTEBOOK = NOTEBOOKS / "postmortem.ipynb"


@dataclass
class Source:
    """One record of the incident, with what the index knows of its run."""

    path: Path
    summary: Summary
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.summary.kind or "investigation"

    @property
    def evaluated(self) -> datetime:
        return utc(self.summary.evaluated_at or self.summary.starts_at)


class IncidentRecords:
    """The records of one incident, in order (investigations, then verifications), and the
    incident they belong to: `incident` (a timeline snapshot), else what the records say."""

    def __init__(self, paths: list[str | Path], incident: dict[str, Any] | None = None) -> None:
        if not paths:
            raise ValueError("a post-mortem needs at least one record")
        sources = [_load(Path(p)) for p in paths]
        if incident is None and len({s.summary.fingerprint for s in sources}) > 1:
            names = ", ".join(s.path.name for s in sources)
            raise ValueError(f"these records are of different incidents (alerts): {names}")
        self.sources = sorted(sources, key=lambda s: (s.kind == "verification", s.evaluated))
        self.investigations = [s for s in self.sources if s.kind != "verification"]
        self.verifications = [s for s in self.sources if s.kind == "verification"]
        if not self.investigations:
            raise ValueError("a post-mortem needs the incident's investigation record")
        self.incident = incident or from_records(self)
        runs = {r["record"]: r for r in self.incident["runs"]}
        for src in self.sources:
            src.run = runs.get(src.path.name, {})

    @property
    def main(self) -> Source:
        """The investigation the diagnosis is taken from, as the incident page picks it."""
        return best_finding(self.investigations, lambda s: s.summary.status)

    # -- facts ---------------------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        s, inc = self.main.summary, self.incident
        return {
            **timeline.facts(inc),
            "alert": inc["alertname"],
            "severity": inc["severity"] or "unknown",
            "runbook": inc["runbook"],
            "instance": inc["labels"].get("instance", ""),
            "impact": inc["annotations"].get("impact", ""),
            "figures": s.figures,
            "top_cause": s.top_cause,
            "contributing": [
                f"{t.cause} ({100 * t.explained_share:.0f}% of the symptom)"
                for t in s.top_causes[1:]
                if t.explained_share is not None
            ],
        }

    def timeline(self) -> list[timeline.Row]:
        return timeline.rows(self.incident)

    def root_cause(self) -> dict[str, Any] | None:
        found = self.main.summary.verdict_of(self.main.summary.top_cause)
        return found.as_dict() if found else None

    def other_causes(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.main.summary.diagnosis if d.verdict == "possible"]

    def resolution_text(self) -> str:
        """The resolution commands as the run filled them, from the executed notebook."""
        nb = nbformat.read(self.main.path / "record.ipynb", as_version=4)
        out = []
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.strip() == "run.resolution()":
                for o in cell.get("outputs", []):
                    text = o.get("data", {}).get("text/markdown")
                    if text:
                        out.append(text if isinstance(text, str) else "".join(text))
        for a in self.main.summary.actions:
            if a.done:
                out.append(f"- mitigation done by the runbook: **{a.action}**: {a.outcome}")
        return "\n\n".join(out) or "*The record holds no resolution commands.*"

    def verification_rows(self) -> list[dict[str, Any]]:
        rows = []
        for v in self.verifications:
            for c in v.summary.post_checks:
                rows.append({"record": v.path.name, "check": c.check, "status": c.status})
        return rows

    def chart_figures(self) -> list[tuple[str, Any]]:
        """(title, figure): the four-panel overview redrawn from each record's saved data."""
        from runbook_lib.evidence import panels
        from runbook_lib.evidence.recording import Replay
        from runbook_lib.notebook import charts
        from runbook_lib.notebook.state import CHART_HISTORY

        out = []
        f = self.facts()
        for src in [self.main, *self.verifications]:
            data = src.path / "data"
            if not (data / "queries.jsonl").exists():
                continue
            s = src.summary
            scope = panels.Scope.from_labels(s.labels)
            at = src.evaluated
            start = min(f["starts_at"], at) - CHART_HISTORY
            replay = Replay(data)
            fig = charts.grid(
                panels.fetch_panels(
                    replay, [panels.PANELS[n] for n in charts.OVERVIEW], scope, start, at
                ),
                f["starts_at"],
                f["ends_at"],
            )
            title = "At the investigation" if src is self.main else "At the verification"
            out.append((f"{title} ({src.path.name})", fig))
        return out

    # -- markdown ------------------------------------------------------------------------
    def markdown(self, chart_files: list[tuple[str, str]] = ()) -> str:
        f = self.facts()
        dur = _duration(f["duration"]) if f["duration"] else "ongoing (not resolved in the records)"
        escalated = f", escalated at {f['escalated_at']:%H:%M:%S} UTC" if f["escalated_at"] else ""
        lines = [
            f"# Post-mortem (draft): {f['alert']} on {f['instance'] or 'unknown instance'}",
            "",
            "## Summary",
            f"- **What**: {f['alert']} ({f['severity']}{escalated}), runbook `{f['runbook']}`",
            f"- **When**: {f['starts_at']:%Y-%m-%d %H:%M:%S} UTC ({f['first_alert']} fired)",
            f"- **Duration**: {dur}",
            f"- **Acknowledged**: {_after(f['acknowledged'])}",
            f"- **Mitigated**: {_after(f['mitigated'])}",
            f"- **Impact**: {f['impact'] or 'to be assessed'}",
            f"- **Likely cause**: {f['top_cause'] or 'none found by the runbook'}",
            *(
                [f"- **Contributing as well**: {', '.join(f['contributing'])}"]
                if f["contributing"]
                else []
            ),
            "",
            "## Timeline (UTC)",
            "| time (UTC) | event |",
            "|---|---|",
            *[f"| {r.at:%Y-%m-%d %H:%M:%S} | {_md(r.event)} |" for r in self.timeline()],
            *(["", self.incident["pending_note"]] if self.incident.get("pending_note") else []),
            "",
            "## Root cause",
        ]
        rc = self.root_cause()
        if rc:
            lines += [f"**{rc['cause']}** ({rc['verdict']}, score {rc['score']:.2f})", ""]
            lines += [f"- {_md(e)}" for e in rc["evidence"]]
        else:
            lines.append("The runbook found no likely cause; to be established.")
        for d in self.other_causes():
            lines.append(f"- also possible: {d['cause']} (score {d['score']:.2f})")
        lines += ["", "## Key charts", ""]
        lines += [f"![{title}]({path})" for title, path in chart_files] or ["(no saved data)"]
        lines += ["", "## Resolution", "", self.resolution_text(), "", "## Verification", ""]
        rows = self.verification_rows()
        if rows:
            lines += ["| record | check | status |", "|---|---|---|"]
            lines += [f"| {r['record']} | {_md(r['check'])} | {_md(r['status'])} |" for r in rows]
        else:
            lines.append("No verification record.")
        lines += [
            "",
            "## Lessons learned",
            "### What went well",
            "### What went wrong",
            "### Where we got lucky",
            "",
            "## Action items",
            "| action | owner | due |",
            "|---|---|---|",
            "| | | |",
            "",
            "## Records",
            *[f"- `{s.path}` ({s.kind}, {s.summary.status})" for s in self.sources],
        ]
        return "\n".join(lines) + "\n"


def draft(
    paths: list[str | Path], output_dir: str | Path = ".", incident: str | Path = ""
) -> Draft:
    """The post-mortem notebook's display of these records (`incident`: the incident.json
    `runbook postmortem` wrote; else what the records say of it)."""
    snapshot = json.loads(Path(incident).read_text()) if incident else None
    return Draft(IncidentRecords(paths, snapshot), output_dir)


def for_incident(
    index: Index, incident_id: int, records_dir: Path, *, output: Path | None = None,
    prometheus_url: str = "", progress: bool = False,
) -> Path:  # fmt: skip
    """The post-mortem of incident `incident_id` of `index`, whose records are in
    `records_dir`; LookupError for an unknown incident, ValueError when it has no record."""
    inc = index.incident(incident_id)
    records = incident_records(inc, records_dir)
    if not records:
        raise ValueError(f"incident {incident_id} has no finished record in {records_dir} yet")
    return write(records, output, progress, incident=timeline.snapshot_of(inc, prometheus_url))


def for_records(
    records: list[str | Path], *, output: Path | None = None, prometheus_url: str = "",
    progress: bool = False,
) -> Path:  # fmt: skip
    """The post-mortem of the incident these records are of: the index beside them tells
    which, and the rest of its story; without one, the records alone."""
    paths = [Path(r).resolve() for r in records]
    incident = None
    beside = paths[0].parent / "index.sqlite" if paths else None
    if beside and beside.exists():
        index = Index(beside)
        found = [index.run_of(p.name) for p in paths]
        ids = {run.incident_id for run, _ in filter(None, found)}
        if len(ids) > 1:
            names = ", ".join(p.name for p in paths)
            raise ValueError(f"these records are of different incidents ({sorted(ids)}): {names}")
        if ids and all(found):
            incident = timeline.snapshot(index, ids.pop(), prometheus_url)
    return write(paths, output, progress, incident=incident)


def write(
    records: list[str | Path], output: Path | None = None, progress: bool = False,
    *, incident: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Run the post-mortem notebook for `records` (of `incident`, a timeline snapshot);
    returns the post-mortem directory."""
    import papermill

    paths = [Path(r).resolve() for r in records]
    IncidentRecords(paths, incident)  # refuse bad input before starting a kernel
    output = Path(output) if output else default_output(paths)
    tmp = output.with_name(f".tmp-{output.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    ipc = workdirs.make("postmortem")
    # paths in the draft's own directory are relative (the notebook runs there): the
    # temporary directory it is written in is gone once the draft is published
    params: dict[str, Any] = {"records": [str(p) for p in paths], "output_dir": "."}
    if incident is not None:
        (tmp / "incident.json").write_text(json.dumps(incident, indent=1, default=str))
        params["incident"] = "incident.json"
    try:
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(tmp / "postmortem.ipynb"),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(tmp),
            config=kernels.ipc_config(ipc),
        )
        nb = nbformat.read(tmp / "postmortem.ipynb", as_version=4)
        nb.metadata.papermill["output_path"] = str(output / "postmortem.ipynb")  # not tmp's
        nbformat.write(nb, tmp / "postmortem.ipynb")
        page = record.html(nb, code=False, report=False)  # the draft whole, its title too
        (tmp / "postmortem.html").write_text(page, encoding="utf-8")
        manifest = {"records": [str(p) for p in paths]}
        (tmp / POSTMORTEM_MANIFEST).write_text(json.dumps(manifest, indent=1))
        if output.exists():
            shutil.rmtree(output)
        tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ipc, ignore_errors=True)
    return output


def default_output(records: list[Path]) -> Path:
    """Where a post-mortem goes unless told: beside its first record, named for it."""
    return records[0].parent / f"postmortem-{records[0].name}"


def incident_records(inc: Incident, records_dir: Path) -> list[Path]:
    """The record directories of an incident (as `Index.incident` gives it), in run order."""
    done = [Path(records_dir) / r.record for r in inc.runs if r.state == "done"]
    return [d for d in done if d.is_dir()]


def from_records(recs: IncidentRecords) -> dict[str, Any]:
    """The incident as its records alone tell it (no index knows them): the alert of the
    investigation, and one finished run per record."""
    s = recs.main.summary
    ends = s.ends_at or next(
        (v.summary.ends_at for v in recs.verifications if v.summary.ends_at), None
    )
    alert = {"id": 0, "alertname": s.alert, "severity": s.severity,
             "starts_at": s.starts_at, "ends_at": ends, "context": False,
             "status": "resolved" if ends else "firing", "labels": s.labels}  # fmt: skip
    runs = [
        {"id": i, "kind": src.kind, "trigger": "", "record": src.path.name, "state": "done",
         "status": src.summary.status, "top_cause": src.summary.top_cause,
         "error": src.summary.error, "finished_at": src.evaluated.timestamp(),
         "verified": _verified(src.summary) if src.kind == "verification" else None}
        for i, src in enumerate(recs.sources, 1)
    ]  # fmt: skip
    return {"alertname": s.alert, "severity": s.severity,
            "runbook": s.runbook, "labels": s.labels, "annotations": {},
            "status": alert["status"], "ends_at": ends,
            "resolved_at": utc(ends).timestamp() if ends else None,
            "alerts": [alert], "runs": runs, "actions": []}  # fmt: skip


def _load(path: Path) -> Source:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a record directory")
    return Source(path, record.summary(path))


def _verified(summary: Summary) -> bool | None:
    from runbook_lib.diagnosis.postcheck import verified

    return verified(summary.post_checks)


def _duration(d: Any) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _after(done: tuple[Any, str] | None) -> str:
    """`after 3 min, by alice` from (time since the start, who); or that none is recorded."""
    if done is None:
        return "not recorded"
    seconds = max(0, int(done[0].total_seconds()))
    took = f"{seconds} s" if seconds < 120 else _duration(done[0])
    return f"after {took}, by {done[1]}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
