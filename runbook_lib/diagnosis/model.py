"""What a diagnosis is made of: the evidence rules look at, the facts they weigh, the
cause they judge and the verdict they give. Data only; `engine` judges, `facts` builds facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from runbook_lib.diagnosis.attribution import Attribution

if TYPE_CHECKING:
    from runbook_lib.evidence.signals import Signals

VERDICTS = ("likely", "possible", "ruled_out", "unknown")


@dataclass(frozen=True)
class LogFacts:
    """What the logs said in the window, reduced to what rules need."""

    counts: dict[str, int]
    error_lines: int
    shares: dict[str, float]  # pattern id -> share of error-level lines
    keys_per_workbook: float | None = None
    distinct_workbook_ratio: float | None = None
    source: str = ""
    cache_keys: dict[str, float] | None = None  # misses, identified, workbooks, keys


@dataclass
class Evidence:
    """Everything the rules may look at; a missing part carries the reason it is missing."""

    signals: Signals
    logs: LogFacts | None = None
    logs_missing: str = "no log source was given"
    host: dict | None = None  # host snapshot (see host_snapshot.py)
    host_missing: str = "host checks were not run"
    container: Any = None  # containers.ContainerState
    container_missing: str = "no container was given"
    attribution: Attribution | None = None  # set by `diagnose` for the runbook judged
    unsplit: str = ""  # why there is no attribution, when the runbook has an attributor

    def sig(self, name: str) -> Any:
        return self.signals.get(name)


@dataclass(frozen=True)
class Fact:
    """One thing a rule weighs; how much (`weight`) and whether the cause stands or falls
    with it (`required`) are always named."""

    holds: bool | None
    text: str
    _: KW_ONLY
    weight: float = 1.0
    required: bool = False
    missing: str = ""
    sign: bool = True  # False: evidence against other explanations, not for this one


@dataclass
class Verdict:
    cause: str
    verdict: str
    score: float
    evidence: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    explained_share: float | None = None  # None: the runbook's symptom is not attributed
    strongest: list[str] = field(default_factory=list)  # the two weightiest facts that held
    required_held: bool = field(default=False, repr=False)  # it has a gate, and it held

    def as_dict(self) -> dict:
        out = asdict(self)
        del out["required_held"]  # how the verdict was reached, not part of the summary
        return out


Rule = Callable[[Evidence], list[Fact]]
NO_COMMANDS = "# no runbook commands for this cause"


@dataclass
class Cause:
    """One of the runbook's common causes, whole: the rule that judges it in each runbook
    that lists it, the runbook's resolution commands, and the guarded mitigation (a key of
    `mitigation.ACTIONS`) a notebook may offer for it."""

    id: str
    rules: dict[str, Rule]  # runbook -> rule
    commands: str = NO_COMMANDS
    mitigation: str | None = None
