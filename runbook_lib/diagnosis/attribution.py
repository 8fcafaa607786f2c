"""How much of the alerting figure each cause explains: the differential half of a diagnosis.

A runbook family's attributor splits the figure its alert fired on into the parts the
contract metrics can measure (the cache's bytes, the processes spawned, one stage's tools,
the error types a cause produces) and lets each cause claim the part it explains. What no
cause claims is `unexplained`. A rule alone asks "is there a sign of this cause?"; the
attribution asks "how much of the symptom does it account for?", which is how the runbook
tells a leak (growth nothing else explains) from a cache that grew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.diagnosis.constants import MIN_POINTS


@dataclass(frozen=True)
class Claim:
    cause: str
    amount: float  # in the attribution's unit, before `scale`
    what: str  # who claims it, in words: "the cache's growth"


@dataclass
class Attribution:
    """The symptom of one run, split among the causes of its runbook."""

    runbook: str
    of_what: str  # unit and symptom: "GB of resident memory gained over the last hour"
    total: float
    causes: tuple[str, ...]  # the causes that could claim a part (share 0 when they do not)
    claims: list[Claim] = field(default_factory=list)
    scale: float = 1.0  # amounts are divided by this for display (1e9: bytes as GB)
    digits: int = 1
    notes: list[str] = field(default_factory=list)  # why a part could not be measured
    unjudged: dict[str, str] = field(default_factory=dict)  # cause -> the data it lacked
    extra: dict[str, float] = field(default_factory=dict)  # named sub-figures rules may read

    def cannot_judge(self, cause: str, why: str) -> None:
        """`cause`'s part cannot be measured: its share is unknown, never 0."""
        self.unjudged[cause] = why
        self.notes.append(f"{cause.replace('_', ' ')}: {why}")

    def claim(self, cause: str, amount: float, what: str) -> None:
        if amount > 0:
            self.claims.append(Claim(cause, float(amount), what))

    def claimed(self, cause: str) -> float:
        return sum(c.amount for c in self.claims if c.cause == cause)

    def share(self, cause: str) -> float | None:
        """The part of the symptom `cause` explains, 0..1; None when it cannot claim here."""
        if cause not in self.causes or cause in self.unjudged or self.total <= 0:
            return None
        return round(min(1.0, self.claimed(cause) / self.total), 3)

    @property
    def unexplained(self) -> float:
        return max(0.0, self.total - sum(c.amount for c in self.claims))

    def amount_text(self, amount: float) -> str:
        return f"{amount / self.scale:.{self.digits}f}"

    def sentence(self, cause: str) -> str:
        """'the cache's growth: 2.1 of the 2.4 GB of resident memory gained ...' (what the
        cause claims, then how much of the symptom that is)."""
        whats = sorted({c.what for c in self.claims if c.cause == cause})
        who = " and ".join(whats) if whats else cause.replace("_", " ")
        return (
            f"{who}: {self.amount_text(self.claimed(cause))} of the "
            f"{self.amount_text(self.total)} {self.of_what}"
        )

    def as_dict(self) -> dict:
        parts = {c: self.claimed(c) / self.scale for c in self.causes if self.claimed(c) > 0}
        return {
            "of_what": self.of_what,
            "total": round(self.total / self.scale, 3),
            "parts": {c: round(v, 3) for c, v in parts.items()},
            "unexplained": round(self.unexplained / self.scale, 3),
            "shares": {c: self.share(c) for c in self.causes},
            "notes": list(self.notes),
        }


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def minutes(window: str) -> int:
    """'15m' -> 15 (the lookback windows the signals are read over)."""
    return int(window.rstrip("m") or 0)


def ends(frame: object) -> tuple[float, float] | None:
    """A series' level at the start (median of its first minute) and at its end (median of
    its last minute): single scrapes are too noisy to subtract."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or len(frame) < MIN_POINTS:
        return None
    v = frame.sort_values("timestamp")["value"].dropna().to_numpy(dtype=float)
    if len(v) < MIN_POINTS:
        return None
    k = max(1, min(4, len(v) // 4))
    return float(sorted(v[:k])[k // 2]), float(sorted(v[-k:])[k // 2])
