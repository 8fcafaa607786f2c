"""Post-mortem drafts from incident records (the runbook's "Document" and "Post-mortem").

Everything comes from the records: their summaries, the executed notebooks (resolution
commands as the run filled them), the index's timestamps (webhook received, run finished),
and each record's saved data, from which the key charts are redrawn, so the draft can be
written after Prometheus has dropped the series. `write` runs `notebooks/postmortem.ipynb`
with Papermill and files it like a record: `.ipynb`, `.html`, `.md`, and `postmortem.json`
naming its sources (retention keeps those).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from runbook_lib.contract.config import NOTEBOOKS
from runbook_lib.evidence.prom import utc
from runbook_lib.records import kernels, record
from runbook_lib.records.retention import POSTMORTEM_MANIFEST

if TYPE_CHECKING:
    from runbook_lib.records.index import Index

NOTEBOOK = NOTEBOOKS / "postmortem.ipynb"


@dataclass
class Source:
    """One record of the incident, with what the index knows of its run."""

    path: Path
    summary: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict)
    incident: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.summary.get("kind") or "investigation"

    @property
    def evaluated(self) -> datetime:
        return utc(self.summary.get("evaluated_at") or self.summary.get("starts_at"))


class IncidentRecords:
    """The records of one incident, in order: investigations, then verifications."""

    def __init__(self, paths: list[str | Path]) -> None:
        if not paths:
            raise ValueError("a post-mortem needs at least one record")
        sources = [_load(Path(p)) for p in paths]
        keys = {(s.summary.get("fingerprint"), s.summary.get("starts_at")) for s in sources}
        if len({k[0] for k in keys}) > 1:
            names = ", ".join(s.path.name for s in sources)
            raise ValueError(f"these records are of different incidents (alerts): {names}")
        self.sources = sorted(sources, key=lambda s: (s.kind == "verification", s.evaluated))
        self.investigations = [s for s in self.sources if s.kind != "verification"]
        self.verifications = [s for s in self.sources if s.kind == "verification"]
        if not self.investigations:
            raise ValueError("a post-mortem needs the incident's investigation record")

    @property
    def main(self) -> Source:
        """The investigation the diagnosis is taken from: the last one that completed, else
        the last that ran without all its data (degraded), else the last."""
        for status in ("completed", "degraded"):
            done = [s for s in self.investigations if s.summary.get("status") == status]
            if done:
                return done[-1]
        return self.investigations[-1]

    # -- facts ---------------------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        s = self.main.summary
        inc = self.main.incident
        starts = utc(s.get("starts_at"))
        ends_text = inc.get("ends_at") or next(
            (v.summary.get("ends_at") for v in self.verifications if v.summary.get("ends_at")),
            None,
        )
        ends = utc(ends_text) if ends_text else None
        return {
            "alert": s.get("alert"),
            "severity": s.get("severity") or "unknown",
            "runbook": s.get("runbook"),
            "instance": (s.get("labels") or {}).get("instance", ""),
            "starts_at": starts,
            "ends_at": ends,
            "duration": (ends - starts) if ends else None,
            "impact": json.loads(inc.get("annotations") or "{}").get("impact", ""),
            "figures": s.get("figures") or {},
            "top_cause": s.get("top_cause"),
            "contributing": [
                f"{t['cause']} ({100 * t['explained_share']:.0f}% of the symptom)"
                for t in (s.get("top_causes") or [])[1:]
                if t.get("explained_share") is not None
            ],
        }

    def timeline(self) -> list[tuple[datetime, str]]:
        f = self.facts()
        events = [(f["starts_at"], f"{f['alert']} started firing ({f['severity']})")]
        if self.main.incident.get("received_at"):
            ts = datetime.fromtimestamp(self.main.incident["received_at"], UTC)
            events.append((ts, "webhook received by the runbook server; investigation queued"))
        for src in self.sources:
            finished = src.run.get("finished_at")
            when = datetime.fromtimestamp(finished, UTC) if finished else src.evaluated
            if src.kind == "verification":
                verdict = {True: "the fix held", False: "not yet verified", None: "no answer"}[
                    _verified(src.summary)
                ]
                events.append((when, f"verification run finished: {verdict} ({src.path.name})"))
                continue
            cause = src.summary.get("top_cause")
            events.append(
                (
                    when,
                    f"investigation {src.summary.get('status')}: "
                    + (f"likely cause {cause}" if cause else "no likely cause")
                    + f" ({src.path.name})",
                )
            )
        if f["ends_at"]:
            events.append((f["ends_at"], "alert resolved"))
        return sorted(events, key=lambda e: e[0])

    def root_cause(self) -> dict[str, Any] | None:
        s = self.main.summary
        return next((d for d in s.get("diagnosis", []) if d["cause"] == s.get("top_cause")), None)

    def other_causes(self) -> list[dict[str, Any]]:
        s = self.main.summary
        return [d for d in s.get("diagnosis", []) if d["verdict"] == "possible"]

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
        actions = [a for a in self.main.summary.get("actions", []) if a.get("done")]
        for a in actions:
            out.append(
                f"- mitigation done by the runbook: **{a.get('action')}**: {a.get('outcome')}"
            )
        return "\n\n".join(out) or "*The record holds no resolution commands.*"

    def verification_rows(self) -> list[dict[str, Any]]:
        rows = []
        for v in self.verifications:
            for c in v.summary.get("post_checks", []):
                rows.append({"record": v.path.name, "check": c["check"], "status": c["status"]})
        return rows

    def chart_figures(self) -> list[tuple[str, Any]]:
        """(title, figure): the four-panel overview redrawn from each record's saved data."""
        from runbook_lib.evidence import panels
        from runbook_lib.evidence.recording import Replay
        from runbook_lib.notebook import charts
        from runbook_lib.notebook.session import CHART_HISTORY

        out = []
        f = self.facts()
        for src in [self.main, *self.verifications]:
            data = src.path / "data"
            if not (data / "queries.jsonl").exists():
                continue
            s = src.summary
            scope = panels.Scope.from_labels(s.get("labels") or {})
            at = src.evaluated
            start = min(f["starts_at"], at) - CHART_HISTORY
            replay = Replay(data)
            fig = charts.grid(
                [panels.fetch(replay, n, scope, start, at) for n in charts.OVERVIEW],
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
        lines = [
            f"# Post-mortem (draft): {f['alert']} on {f['instance'] or 'unknown instance'}",
            "",
            "## Summary",
            f"- **What**: {f['alert']} ({f['severity']}), runbook `{f['runbook']}`",
            f"- **When**: {f['starts_at']:%Y-%m-%d %H:%M:%S} UTC",
            f"- **Duration**: {dur}",
            f"- **Impact**: {f['impact'] or 'to be assessed'}",
            f"- **Likely cause**: {f['top_cause'] or 'none found by the runbook'}",
            *(
                [f"- **Contributing as well**: {', '.join(f['contributing'])}"]
                if f["contributing"]
                else []
            ),
            "",
            "## Timeline (UTC)",
            "| time | event |",
            "|---|---|",
            *[f"| {t:%Y-%m-%d %H:%M:%S} | {_md(e)} |" for t, e in self.timeline()],
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
        lines += [f"- {r['check']}: {r['status']}" for r in rows] or ["No verification record."]
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
            *[f"- `{s.path}` ({s.kind}, {s.summary.get('status')})" for s in self.sources],
        ]
        return "\n".join(lines) + "\n"


class Draft(IncidentRecords):
    """What the post-mortem notebook shows, section by section; charts are saved as PNGs
    beside the draft so the Markdown can link them."""

    def __init__(self, paths: list[str | Path], output_dir: str | Path = ".") -> None:
        super().__init__(paths)
        self.output_dir = Path(output_dir)
        self.chart_files: list[tuple[str, str]] = []

    def show_summary(self) -> None:
        from IPython.display import Markdown, display

        md = self.markdown()
        display(Markdown(md.split("## Summary", 1)[1].split("## Timeline", 1)[0]))

    def show_timeline(self) -> None:
        import pandas as pd
        from IPython.display import display

        rows = [{"time (UTC)": f"{t:%Y-%m-%d %H:%M:%S}", "event": e} for t, e in self.timeline()]
        display(pd.DataFrame(rows))

    def show_root_cause(self) -> None:
        from IPython.display import Markdown, display

        md = self.markdown()
        display(Markdown(md.split("## Root cause", 1)[1].split("## Key charts", 1)[0]))

    def show_charts(self) -> None:
        from IPython.display import Markdown, display

        from runbook_lib.notebook import charts

        figures = self.chart_figures()
        if not figures:
            display(Markdown("*The records hold no saved data to redraw charts from.*"))
        (self.output_dir / "charts").mkdir(parents=True, exist_ok=True)
        for i, (title, fig) in enumerate(figures, 1):
            name = f"charts/overview-{i}.png"
            (self.output_dir / name).write_bytes(charts.png_bytes(fig))
            self.chart_files.append((title, name))
            display(Markdown(f"**{title}**"))
            display(fig)

    def show_resolution(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown(self.resolution_text()))

    def show_verification(self) -> None:
        import pandas as pd
        from IPython.display import Markdown, display

        rows = self.verification_rows()
        display(pd.DataFrame(rows) if rows else Markdown("*No verification record.*"))

    def write_markdown(self) -> Path:
        path = self.output_dir / "postmortem.md"
        path.write_text(self.markdown(self.chart_files), encoding="utf-8")
        return path


def write(records: list[str | Path], output: Path | None = None, progress: bool = False) -> Path:
    """Run the post-mortem notebook for `records`; returns the post-mortem directory."""
    import papermill

    paths = [Path(r).resolve() for r in records]
    IncidentRecords(paths)  # refuse bad input before starting a kernel
    output = Path(output) if output else paths[0].parent / f"postmortem-{paths[0].name}"
    tmp = output.with_name(f".tmp-{output.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    ipc = Path(tempfile.mkdtemp(prefix="rbk-"))
    try:
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(tmp / "postmortem.ipynb"),
            parameters={"records": [str(p) for p in paths], "output_dir": str(tmp)},
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(tmp),
            config=kernels.ipc_config(ipc),
        )
        nb = nbformat.read(tmp / "postmortem.ipynb", as_version=4)
        (tmp / "postmortem.html").write_text(record.html(nb, code=False), encoding="utf-8")
        manifest = {"records": [str(p) for p in paths]}
        (tmp / POSTMORTEM_MANIFEST).write_text(json.dumps(manifest, indent=1))
        if output.exists():
            shutil.rmtree(output)
        tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ipc, ignore_errors=True)
    return output


def incident_records(index: Index, output_dir: Path, incident_id: int) -> list[Path]:
    """The record directories of one incident in the index, in run order."""
    runs = index.incident(incident_id)["runs"]
    done = [output_dir / r["record"] for r in runs if r["state"] == "done"]
    return [d for d in done if d.exists()]


def _load(path: Path) -> Source:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a record directory")
    src = Source(path, record.summary(path))
    if (path.parent / "index.sqlite").exists():
        from runbook_lib.records.index import Index  # noqa: F811

        found = Index(path.parent / "index.sqlite").run_of(path.name)
        if found:
            src.run, src.incident = found
    return src


def _verified(summary: dict) -> bool | None:
    from runbook_lib.diagnosis.postcheck import verified

    return verified(summary.get("post_checks", []))


def _duration(d: Any) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
