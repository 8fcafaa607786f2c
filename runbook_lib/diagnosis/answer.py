""" "Nothing explains this" is an answer: when the runbook's causes explain less than half of
the symptom, the record's lead, the incident message and the diagnosis cell say so before
anything else, list what was checked, and point to the manual steps.

Built from a run's summary (what `summary.json` holds), so the record, the message and the
pages say the same thing from the same facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from runbook_lib.contract.summary import Summary
from runbook_lib.diagnosis.attribution import Attribution, pct
from runbook_lib.diagnosis.constants import NOTHING_EXPLAINS

# The symptom each runbook's attribution splits, in a few words.
SYMPTOMS = {
    "high_latency": "the added latency",
    "memory": "the memory gained",
    "high_error_rate": "the errors",
    "cache_hit_rate": "the cache misses",
    "libreoffice_leak": "the soffice processes",
    "fork_leak": "the forked processes",
    "fd_leak": "the open descriptors",
    "disk_usage": "the disk's growth",
}
MANUAL_STEPS = (
    "work through the runbook's investigation steps below by hand, read the logs around "
    "the start of the alert, and escalate if the cause stays unknown (the runbook escalates "
    "an incident that persists over 30 minutes)"
)


@dataclass(frozen=True)
class Unexplained:
    """What no runbook cause explains, what was checked, and what to do instead."""

    share: float
    headline: str  # "No runbook cause explains 96% of the added latency"
    checked: list[str]  # "cache_thrashing: possible, explains 4%"
    manual: str = MANUAL_STEPS

    def text(self) -> str:
        """The answer as plain text lines, for a message."""
        return "\n".join(
            [self.headline, "Checked: " + "; ".join(self.checked), "Manual steps: " + self.manual]
        )


def unexplained_share(att: Attribution | None) -> float | None:
    """The part of the symptom no cause claims, 0..1 (None when it was not split)."""
    if att is None or att.total <= 0:
        return None
    return round(att.unexplained / att.total, 3)


def unexplained(summary: Summary) -> Unexplained | None:
    """When the runbook's causes explain less than half of a run's symptom, what to say
    first; else None."""
    share, att = summary.unexplained_share, summary.attribution
    if share is None and att is not None and att.total:  # a record from before the key existed
        share = round(att.unexplained / att.total, 3)
    return nothing_explains(summary.runbook, share, summary.diagnosis)


def nothing_explains(
    runbook: str, share: float | None, verdicts: Sequence[Judged]
) -> Unexplained | None:
    """The same from the verdicts (`engine.Verdict` in the kernel, a summary's after)."""
    if share is None or 1 - share >= NOTHING_EXPLAINS:
        return None
    symptom = SYMPTOMS.get(runbook, "the symptom")
    return Unexplained(
        share,
        f"No runbook cause explains {pct(share)} of {symptom}",
        [_checked(v) for v in verdicts],
    )


class Judged(Protocol):
    """A cause's verdict, as the kernel and a summary both hold it."""

    cause: str
    verdict: str
    explained_share: float | None


def _checked(v: Judged) -> str:
    verdict = v.verdict.replace("_", " ")
    share = v.explained_share
    explains = f", explains {pct(share)}" if share is not None else ""
    return f"{v.cause}: {verdict}{explains}"
