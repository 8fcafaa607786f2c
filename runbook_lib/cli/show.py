"""A record's summary as text: `runbook run` prints the answer (the brief form), `runbook
summary` everything summary.json holds. One function, so the two never disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summary_text(summ: dict[str, Any], record: Path | None = None, *, brief: bool = False) -> str:
    """The answer first (status, what stopped the run from seeing, the top cause), then the
    diagnosis, what to do, the figures and the gaps; the report's path last."""
    lines = [_head(summ), *(f"  {s}" for s in summ.get("degraded_by") or [])]
    if summ.get("error"):
        lines.append(f"  error: {summ['error']}")
    lines.append(f"  top cause: {tops(summ)}")
    if brief:
        lines += _top_evidence(summ)
        lines += _first_step(summ)
        lines += _gap_count(summ, record)
    else:
        lines += _diagnosis(summ.get("diagnosis") or [])
        lines += _resolution(summ)
        lines += _figures(summ.get("figures") or {})
        lines += _actions(summ.get("actions") or [])
        lines += _checks(summ.get("post_checks") or [])
        lines += [f"  gap: {gap}" for gap in summ.get("data_gaps") or []]
        lines += [f"  {k} link: {v}" for k, v in (summ.get("links") or {}).items()]
    if record is not None:
        lines.append(f"  report: {Path(record) / 'report.html'}")
    return "\n".join(lines)


def _head(summ: dict[str, Any]) -> str:
    return (
        f"{summ.get('alert')} ({summ.get('severity') or 'no severity'}) -> "
        f"{summ.get('runbook')}: {summ.get('status')}"
    )


def tops(summ: dict[str, Any]) -> str:
    """The top cause, or the causes that contribute together, with their shares."""
    tops = summ.get("top_causes") or (
        [{"cause": summ["top_cause"], "explained_share": None}] if summ.get("top_cause") else []
    )
    if not tops:
        return "none likely"
    named = [t["cause"] + _share(t.get("explained_share"), " ({:.0f}%)") for t in tops]
    return named[0] if len(named) == 1 else " + ".join(named) + ", contributing together"


def _share(share: float | None, form: str) -> str:
    return form.format(100 * share) if share is not None else ""


def _row(d: dict[str, Any]) -> str:
    explains = _share(d.get("explained_share"), "  explains {:.0f}%")
    return f"  {d['verdict']:<9} {d['score']:.2f} {d['cause']}{explains}"


def _diagnosis(rows: list[dict[str, Any]]) -> list[str]:
    """Every cause judged, with all of its evidence."""
    out = []
    for d in rows:
        out.append(_row(d))
        out += [f"      {line}" for line in d.get("evidence") or []]
    return out


def _top_evidence(summ: dict[str, Any]) -> list[str]:
    top = summ.get("top_cause")
    found = next((d for d in summ.get("diagnosis") or [] if d["cause"] == top), None)
    return [f"      {line}" for line in (found or {}).get("evidence") or []]


def _first_step(summ: dict[str, Any]) -> list[str]:
    return [f"  first step: {summ['first_command']}"] if summ.get("first_command") else []


def _gap_count(summ: dict[str, Any], record: Path | None) -> list[str]:
    gaps = summ.get("data_gaps") or []
    if not gaps:
        return []
    where = f"runbook summary {record}" if record is not None else "runbook summary RECORD"
    return [f"  {len(gaps)} data gap{'s' if len(gaps) > 1 else ''}: `{where}` lists them"]


def _resolution(summ: dict[str, Any]) -> list[str]:
    """The commands for each likely or possible cause; older records hold the first only."""
    steps = summ.get("resolution") or []
    if not steps:
        return _first_step(summ)
    out = []
    for step in steps:
        out.append(f"  resolution for {step['cause']} ({step['verdict']}):")
        out += [f"      {line}" for line in step["commands"].splitlines() if line.strip()]
    return out


def _figures(figures: dict[str, float]) -> list[str]:
    if not figures:
        return []
    return ["  figures: " + ", ".join(f"{k} {v:g}" for k, v in figures.items())]


def _actions(actions: list[dict[str, Any]]) -> list[str]:
    return [f"  action {a.get('action', '')}: {a.get('outcome', '')}" for a in actions]


def _checks(checks: list[dict[str, Any]]) -> list[str]:
    return [f"  check: {c['check']}: {c['status']}" for c in checks]
