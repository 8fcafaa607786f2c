"""A record's summary as text: `runbook run` prints the answer (the brief form), `runbook
summary` everything summary.json holds. One function, so the two never disagree."""

from __future__ import annotations

from pathlib import Path

from runbook_lib.contract.summary import Action, CauseVerdict, PostCheck, Summary, TopCause


def summary_text(summ: Summary, record: Path | None = None, *, brief: bool = False) -> str:
    """The answer first (status, what stopped the run from seeing, the top cause), then the
    diagnosis, what to do, the figures and the gaps; the report's path last."""
    lines = [_head(summ), *(f"  {s}" for s in summ.degraded_by)]
    if summ.error:
        lines.append(f"  error: {summ.error}")
    lines.append(f"  top cause: {tops(summ)}")
    if brief:
        lines += _top_evidence(summ)
        lines += _first_step(summ)
        lines += _gap_count(summ, record)
    else:
        lines += _diagnosis(summ.diagnosis)
        lines += _resolution(summ)
        lines += _figures(summ.figures)
        lines += _actions(summ.actions)
        lines += _checks(summ.post_checks)
        lines += [f"  gap: {gap}" for gap in summ.data_gaps]
        lines += [f"  {k} link: {v}" for k, v in summ.links.items()]
    if record is not None:
        lines.append(f"  report: {Path(record) / 'report.html'}")
    return "\n".join(lines)


def _head(summ: Summary) -> str:
    return f"{summ.alert} ({summ.severity or 'no severity'}) -> {summ.runbook}: {summ.status}"


def tops(summ: Summary) -> str:
    """The top cause, or the causes that contribute together, with their shares."""
    tops = summ.top_causes or ([TopCause(cause=summ.top_cause)] if summ.top_cause else [])
    if not tops:
        return "none likely"
    named = [t.cause + _share(t.explained_share, " ({:.0f}%)") for t in tops]
    return named[0] if len(named) == 1 else " + ".join(named) + ", contributing together"


def _share(share: float | None, form: str) -> str:
    return form.format(100 * share) if share is not None else ""


def _row(d: CauseVerdict) -> str:
    explains = _share(d.explained_share, "  explains {:.0f}%")
    return f"  {d.verdict:<9} {d.score:.2f} {d.cause}{explains}"


def _diagnosis(rows: list[CauseVerdict]) -> list[str]:
    """Every cause judged, with all of its evidence."""
    out = []
    for d in rows:
        out.append(_row(d))
        out += [f"      {line}" for line in d.evidence]
    return out


def _top_evidence(summ: Summary) -> list[str]:
    found = summ.verdict_of(summ.top_cause)
    return [f"      {line}" for line in (found.evidence if found else [])]


def _first_step(summ: Summary) -> list[str]:
    return [f"  first step: {summ.first_command}"] if summ.first_command else []


def _gap_count(summ: Summary, record: Path | None) -> list[str]:
    gaps = summ.data_gaps
    if not gaps:
        return []
    where = f"runbook summary {record}" if record is not None else "runbook summary RECORD"
    return [f"  {len(gaps)} data gap{'s' if len(gaps) > 1 else ''}: `{where}` lists them"]


def _resolution(summ: Summary) -> list[str]:
    """The commands for each likely or possible cause; older records hold the first only."""
    if not summ.resolution:
        return _first_step(summ)
    out = []
    for step in summ.resolution:
        out.append(f"  resolution for {step.cause} ({step.verdict}):")
        out += [f"      {line}" for line in step.commands.splitlines() if line.strip()]
    return out


def _figures(figures: dict[str, float]) -> list[str]:
    if not figures:
        return []
    return ["  figures: " + ", ".join(f"{k} {v:g}" for k, v in figures.items())]


def _actions(actions: list[Action]) -> list[str]:
    return [f"  action {a.action}: {a.outcome}" for a in actions]


def _checks(checks: list[PostCheck]) -> list[str]:
    return [f"  check: {c.check}: {c.status}" for c in checks]
