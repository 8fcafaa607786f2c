"""The kinds of fact a rule weighs, each from one source of evidence: a Prometheus signal,
the logs, the host snapshot, the container, the attribution. A fact whose evidence is
missing cannot be judged (`holds` None) and says what it lacked; it never counts as
healthy or as zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runbook_lib.contract.names import NAMES
from runbook_lib.diagnosis.attribution import pct
from runbook_lib.diagnosis.constants import ERROR_TYPES_SHARE, LOG_SHARE, MOSTLY
from runbook_lib.diagnosis.model import Evidence, Fact, LogFacts


def metric(
    ev: Evidence,
    name: str,
    test: Callable[[Any], bool],
    text: Callable[[Any], str],
    *,
    weight: float = 1.0,
    required: bool = False,
    what: str = "",
    sign: bool = True,
) -> Fact:
    value = ev.sig(name)
    if value is None or (isinstance(value, dict) and not value):
        why = ev.signals.why_missing(name)
        return Fact(
            None,
            what or name,
            weight=weight,
            required=required,
            missing=f"{what or name}: {why}",
            sign=sign,
        )
    return Fact(bool(test(value)), text(value), weight=weight, required=required, sign=sign)


def log_fact(
    ev: Evidence,
    test: Callable[[LogFacts], bool | None],
    text: Callable[[LogFacts], str],
    *,
    weight: float = 1.0,
    required: bool = False,
    what: str = "log evidence",
    sign: bool = True,
) -> Fact:
    if ev.logs is None:
        return Fact(
            None,
            what,
            weight=weight,
            required=required,
            missing=f"{what}: {ev.logs_missing}",
            sign=sign,
        )
    held = test(ev.logs)
    if held is None:
        return Fact(
            None,
            what,
            weight=weight,
            required=required,
            missing=f"{what}: not enough log lines",
            sign=sign,
        )
    return Fact(bool(held), text(ev.logs), weight=weight, required=required, sign=sign)


def processes_named(h: dict, name: str) -> list[dict]:
    """The host snapshot's processes called `name`."""
    return [p for p in h.get("processes", []) if p.get("name") == name]


def host_fact(
    ev: Evidence,
    test: Callable[[dict], bool | None],
    text: Callable[[dict], str],
    *,
    weight: float = 1.0,
    required: bool = False,
    what: str = "host evidence",
) -> Fact:
    if ev.host is None:
        return Fact(
            None, what, weight=weight, required=required, missing=f"{what}: {ev.host_missing}"
        )
    held = test(ev.host)
    if held is None:
        return Fact(
            None,
            what,
            weight=weight,
            required=required,
            missing=f"{what}: not in the host snapshot",
        )
    return Fact(bool(held), text(ev.host), weight=weight, required=required)


def container_fact(
    ev: Evidence,
    test: Callable[[Any], bool],
    text: Callable[[Any], str],
    *,
    weight: float = 1.0,
    what: str = "container state",
) -> Fact:
    c = ev.container
    if (
        c is None
        or not getattr(c, "exists", False)
        or getattr(c, "error", None)
        and not getattr(c, "status", None)
    ):
        why = ev.container_missing if c is None else (getattr(c, "error", "") or "not found")
        return Fact(None, what, weight=weight, required=False, missing=f"{what}: {why}")
    return Fact(bool(test(c)), text(c), weight=weight)


def share(by: dict[str, float] | None, keys: set[str]) -> float | None:
    if not by:
        return None
    total = sum(by.values())
    return None if total <= 0 else sum(v for k, v in by.items() if k in keys) / total


def errors_share(
    ev: Evidence,
    keys: set[str],
    label: str,
    *,
    weight: float = 3.0,
    required: bool = True,
    min_share: float = ERROR_TYPES_SHARE,
) -> Fact:
    by = ev.sig("errors_by_type")
    s = share(by, keys)
    w = ev.signals.window
    if s is None:
        missing = "errors_by_type" in ev.signals.missing
        why = ev.signals.why_missing("errors_by_type") if missing else "no errors in the window"
        return Fact(
            None,
            f"{label} share of errors",
            weight=weight,
            required=required,
            missing=f"{label} share of errors: {why}",
        )
    return Fact(
        s >= min_share,
        f"{label} are {pct(s)} of errors over the last {w}",
        weight=weight,
        required=required,
    )


def log_share(
    ev: Evidence,
    patterns: set[str],
    label: str,
    *,
    weight: float = 2.0,
    min_share: float = LOG_SHARE,
) -> Fact:
    def test(lf: LogFacts) -> bool | None:
        if lf.error_lines == 0:
            return False
        return sum(lf.shares.get(p, 0.0) for p in patterns) >= min_share

    def text(lf: LogFacts) -> str:
        s = sum(lf.shares.get(p, 0.0) for p in patterns)
        n = sum(lf.counts.get(p, 0) for p in patterns)
        return f"{n} log lines show {label} ({pct(s)} of {lf.error_lines} error lines)"

    return log_fact(ev, test, text, weight=weight, what=f"log lines showing {label}")


def log_seen(
    ev: Evidence, pattern: str, label: str, *, weight: float = 2.0, at_least: int = 1
) -> Fact:
    return log_fact(
        ev,
        lambda lf: lf.counts.get(pattern, 0) >= at_least,
        lambda lf: f"{lf.counts.get(pattern, 0)} log lines with {label}",
        weight=weight,
        what=f"log lines with {label}",
    )


def unhealthy(ev: Evidence, component: str, *, weight: float = 2.0) -> Fact:
    """The component reports itself unhealthy. A component the health series does not list
    is unknown: the real server exposes no component health at all."""
    what = f"health of {component}"
    health = ev.sig("health")
    if health and component not in health:
        metric_name = next(iter(ev.signals.series.get("health", ())), NAMES.health)
        why = f'no series for component "{component}" (reads {metric_name}{{component="{component}"}})'
        return Fact(None, what, weight=weight, missing=f"{what}: {why}")
    return metric(
        ev,
        "health",
        lambda h: h[component] < 1,
        lambda h: f"component {component} reports {'unhealthy' if h[component] < 1 else 'healthy'}",
        weight=weight,
        what=what,
    )


def down(ev: Evidence, *, required: bool = True) -> Fact:
    return metric(
        ev,
        "up_min",
        lambda v: v < 1,
        lambda v: (
            "the service stopped answering scrapes in the window"
            if v < 1
            else "the service answered every scrape in the window"
        ),
        weight=0.0,
        required=required,
        what="scrape status",
    )


def explains(
    ev: Evidence,
    cause: str,
    *,
    at_least: float = MOSTLY,
    weight: float = 2.0,
    required: bool = False,
) -> Fact:
    """A fact from the attribution: `cause` explains at least `at_least` of the symptom."""
    att = ev.attribution
    share = att.share(cause) if att else None
    if att is None or share is None:
        why = "; ".join(att.notes) if att and att.notes else ev.unsplit or "not split"
        return Fact(
            None, "share of the symptom explained", weight=weight, required=required, missing=why
        )
    return Fact(share >= at_least, att.sentence(cause), weight=weight, required=required)
