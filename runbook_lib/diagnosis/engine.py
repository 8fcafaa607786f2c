"""One rule per cause id (docs/causes.md lists them): evidence in, verdict out. The rules
are registered here (`rule`, `attributes`), judged and weighed against each other; what
they are made of is in `model`, the facts they weigh are built with `facts`.

A rule weighs facts. A fact holds, fails, or cannot be judged (its data is missing). The
score is the weight of the facts that hold over the weight of the facts that could be
judged; a `required` fact that cannot be judged makes the verdict `unknown`, one that fails
rules the cause out. Facts that only exclude other explanations (`sign=False`) cannot make
a cause likely on their own: without a judged sign of the cause it is at most `possible`.
Every fact brings a sentence a person can check.

Then the causes compete (see `attribution`): each verdict carries the share of the symptom
its cause explains, a cause whose symptom another cause mostly explains is at most
`possible`, and likely causes are ordered by that share, never by the order of the rules.
"""

from __future__ import annotations

from collections.abc import Callable

from runbook_lib.diagnosis.attribution import Attribution, pct
from runbook_lib.diagnosis.constants import CONTRIBUTOR, LIKELY, MOSTLY, POSSIBLE
from runbook_lib.diagnosis.model import NO_COMMANDS, VERDICTS, Cause, Evidence, Fact, Rule, Verdict

LITTLE = CONTRIBUTOR  # a likely cause explaining less than this of a symptom another
# cause mostly explains is at most `possible`, and is not named as contributing


CAUSES: dict[str, Cause] = {}
RULES: dict[str, dict[str, Rule]] = {}  # runbook -> cause id -> rule, the engine's view
Attributor = Callable[[Evidence], Attribution | None]
ATTRIBUTORS: dict[str, Attributor] = {}  # runbook -> how its symptom splits among causes
SPLIT_NEEDS: dict[str, tuple[str, ...]] = {}  # runbook -> the signals its attributor needs


def rule(
    runbook: str | tuple[str, ...],
    cause: str,
    commands: str = NO_COMMANDS,
    mitigation: str | None = None,
) -> Callable[[Rule], Rule]:
    """Register `fn` as the rule of `cause` in `runbook`(s), with the cause's commands and
    mitigation. A cause listed by several runbooks keeps one `Cause`."""

    def register(fn: Rule) -> Rule:
        entry = CAUSES.setdefault(cause, Cause(cause, {}, commands, mitigation))
        if (entry.commands, entry.mitigation) != (commands, mitigation):
            raise ValueError(f"cause {cause!r} registered twice with different commands")
        for rb in (runbook,) if isinstance(runbook, str) else runbook:
            entry.rules[rb] = fn
            RULES.setdefault(rb, {})[cause] = fn
        return fn

    return register


def attributes(*runbooks: str, needs: tuple[str, ...] = ()) -> Callable[[Attributor], Attributor]:
    """Register `fn` as the attributor of the symptom of `runbooks`; `needs` names the
    signals (or "host", the host snapshot) without which it cannot measure the symptom."""

    def register(fn: Attributor) -> Attributor:
        for rb in runbooks:
            ATTRIBUTORS[rb] = fn
            SPLIT_NEEDS[rb] = needs
        return fn

    return register


def unsplit(runbook: str, ev: Evidence) -> str:
    """Why `runbook`'s symptom was not split: the series it lacked, or no symptom."""
    needs = SPLIT_NEEDS.get(runbook, ())
    lacking = [ev.signals.why_missing(n) for n in needs if n != "host" and ev.sig(n) is None]
    if "host" in needs and ev.host is None:
        lacking.append(f"the host: {ev.host_missing}")
    return (
        "the symptom could not be measured: " + "; ".join(lacking)
        if lacking
        else ("no symptom to split in the window")
    )


def judge(cause: str, facts: list[Fact]) -> Verdict:
    known = [f for f in facts if f.holds is not None]
    missing = [f.missing or f.text for f in facts if f.holds is None]
    lines = [("✔ " if f.holds else "✘ ") + f.text for f in known]
    held = sorted((f for f in known if f.holds), key=lambda f: (not f.sign, -f.weight))
    strongest = ["✔ " + f.text for f in held[:2]]
    if any(f.required and f.holds is None for f in facts):
        return Verdict(cause, "unknown", 0.0, lines, missing)
    if any(f.required and f.holds is False for f in facts):
        return Verdict(cause, "ruled_out", 0.0, lines, missing)
    total = sum(f.weight for f in known)
    if total == 0:
        return Verdict(cause, "unknown", 0.0, lines, missing)
    score = round(sum(f.weight for f in known if f.holds) / total, 2)
    if not any(f.sign and f.weight > 0 for f in known):
        score = min(score, 0.5)
        missing.insert(0, "no direct sign of this cause could be judged")
    verdict = "likely" if score >= LIKELY else "possible" if score >= POSSIBLE else "ruled_out"
    gated = any(f.required for f in facts)
    return Verdict(cause, verdict, score, lines, missing, strongest=strongest, required_held=gated)


def diagnose(runbook: str, ev: Evidence) -> list[Verdict]:
    """Every cause of `runbook`, judged, weighed against each other, and sorted: likely
    first, then by the share of the symptom explained, then by score (unknown last)."""
    attribute = ATTRIBUTORS.get(runbook)
    ev.attribution = attribute(ev) if attribute else None
    ev.unsplit = unsplit(runbook, ev) if attribute and ev.attribution is None else ""
    verdicts = [judge(cause, fn(ev)) for cause, fn in RULES.get(runbook, {}).items()]
    differentiate(verdicts, ev.attribution)
    order = {v: i for i, v in enumerate(VERDICTS)}
    return sorted(
        verdicts,
        key=lambda v: (order[v.verdict], -(v.explained_share or 0.0), -v.score, v.cause),
    )


def differentiate(verdicts: list[Verdict], att: Attribution | None) -> None:
    """Give each verdict its share of the symptom; then let the shares decide between the
    verdicts the facts left close: the cause that explains most of the symptom with no rival
    is likely (`dominant`), and a likely cause explaining little of a symptom another cause
    mostly explains is at most possible (`capped`)."""
    if att is None:
        return
    for v in verdicts:
        v.explained_share = att.share(v.cause)
        line = att.sentence(v.cause)
        if v.explained_share is not None and not any(line in e for e in v.evidence):
            v.evidence.append(("✔ " if v.explained_share >= LITTLE else "✘ ") + line)
    shared = [v for v in verdicts if v.explained_share is not None]
    contenders = [v for v in shared if v.verdict in ("likely", "possible")]
    if not contenders:
        return
    leader = max(contenders, key=lambda v: v.explained_share or 0.0)
    lead = leader.explained_share or 0.0
    rival = max((v.explained_share or 0.0 for v in shared if v is not leader), default=0.0)
    dominant = lead >= MOSTLY and rival < LITTLE
    if dominant and leader.verdict == "possible" and leader.required_held:
        leader.verdict = "likely"
        leader.evidence.append(
            f"✔ explains {pct(lead)} of the symptom and no other cause explains {pct(LITTLE)}: likely"
        )
    for v in shared:
        if v is not leader and v.verdict == "likely" and (v.explained_share or 0.0) < LITTLE:
            if lead >= MOSTLY:
                v.verdict, v.score = "possible", min(v.score, round(LIKELY - 0.01, 2))
                v.evidence.append(
                    f"✘ {leader.cause} explains {pct(lead)} of it, this "
                    f"cause {pct(v.explained_share or 0.0)}: at most possible"
                )


def top_causes(verdicts: list[Verdict]) -> list[dict]:
    """The likely cause that explains most, and every other likely cause that explains a
    real part of the same symptom (contributing, with its share)."""
    likely = [v for v in verdicts if v.verdict == "likely"]
    if not likely:
        return []
    first, rest = likely[0], likely[1:]
    if first.explained_share is not None:
        rest = [v for v in rest if (v.explained_share or 0.0) >= LITTLE]
    else:
        rest = []
    return [
        {"cause": v.cause, "explained_share": v.explained_share, "score": v.score}
        for v in [first, *rest]
    ]


def unknown_gaps(verdicts: list[Verdict]) -> list[str]:
    """Every fact that could not be judged for lack of a series, naming the series: for a
    cause left unknown by it, and for a cause judged without it (gaps without a series, such
    as an unreachable Prometheus or no log source, are listed once elsewhere)."""
    return [
        f"{v.cause} is unknown: {m}" if v.verdict == "unknown" else f"{v.cause}, not judged: {m}"
        for v in verdicts
        for m in v.missing
        if "(reads " in m and "unreachable" not in m
    ]


def summary(verdicts: list[Verdict]) -> tuple[list[dict], str | None]:
    """The diagnosis list of the record summary, and its top cause (first likely)."""
    top = next((v.cause for v in verdicts if v.verdict == "likely"), None)
    return [v.as_dict() for v in verdicts], top
