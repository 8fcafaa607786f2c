"""The state of one runbook run: its parameters, the alert's times and series, what the
cells found so far (panels, evidence, verdicts, figures, actions, checks) and what the run
could not see. The cells' work is in the modules named for it (`fetching`, `header`,
`diagnosing`, `resolving`, `messaging`, `summary`); `run.Run` binds them to a notebook."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from IPython.display import Markdown, display

from runbook_lib import diagnosis
from runbook_lib.evidence import panels, recording
from runbook_lib.evidence.logs import LogSource
from runbook_lib.evidence.prom import Prom
from runbook_lib.notebook import gaps
from runbook_lib.notebook.parameters import Params

CHART_HISTORY = timedelta(minutes=45)
LOOKBACK_MINUTES = 15  # when the parameters give none
TEMP_DIR = "/tmp"  # the service's temporary directory, when the parameters give none


def log_specs(p: Params) -> list[str]:
    """Where a run reads the service's logs, together: `log_file` (a path or a glob, or a
    spec such as journal:UNIT), the `log_unit`'s journal and the `container`'s logs."""
    unit, container = p.log_unit, p.container
    return [s for s in (p.log_file, unit and f"journal:{unit}",
                        container and f"container:{container}") if s]  # fmt: skip


@dataclass
class Session:
    runbook: str
    p: Params
    at: datetime
    starts_at: datetime
    ends_at: datetime | None
    scope: panels.Scope
    prom: Prom
    panel_cache: dict[str, panels.PanelData] = field(default_factory=dict)
    evidence: diagnosis.Evidence | None = None
    verdicts: list[diagnosis.Verdict] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)
    post_check_rows: list[dict] = field(default_factory=list)  # the post-resolution checks
    gaps: list[str] = field(default_factory=list)
    down: dict[str, str] = field(default_factory=dict)  # Prometheus URL -> why it did not answer
    # The notebook's globals, read again by each cell (run.Run.refresh), and what the
    # parameters were when last read; panels as cells defined them, kept across a change.
    namespace: dict[str, Any] | None = None
    given: dict[str, Any] = field(default_factory=dict)
    panel_defs: dict[str, tuple[panels.Panel, timedelta]] = field(default_factory=dict)
    exploring: str = ""  # opened by hand with no alert firing: what the header says instead
    found_by_hand: str = ""  # opened by hand: where the firing alert examined came from

    # -- the window ----------------------------------------------------------------------
    @property
    def window(self) -> tuple[datetime, datetime]:
        return min(self.starts_at, self.at) - CHART_HISTORY, self.at

    @property
    def firing_for(self) -> timedelta:
        return (self.ends_at or self.at) - self.starts_at

    @property
    def alert_start(self) -> datetime | None:
        """Where the charts mark the alert: nowhere while exploring a healthy service."""
        return None if self.exploring else self.starts_at

    @property
    def lookback_minutes(self) -> int:
        return self.p.lookback_minutes or LOOKBACK_MINUTES

    @property
    def temp_dir(self) -> str:
        return self.p.temp_dir or TEMP_DIR

    # -- what the run could not see --------------------------------------------------------
    def gap(self, text: str) -> None:
        """A data gap of the run, said once."""
        if text not in self.gaps:
            self.gaps.append(text)

    def unreachable(self, text: str) -> bool:
        """Whether `text` says Prometheus did not answer; the first reason is kept, to be
        stated once for the run (`degraded_by`) instead of once per panel and signal."""
        found = gaps.UNREACHABLE.search(text)
        if found:
            self.down.setdefault(found["url"], found["why"])
        return found is not None

    def degraded_by(self) -> list[str]:
        """What the run could not see at all, and where its address is set."""
        return [gaps.unanswered(url, why) for url, why in self.down.items()]

    def source_gap(self, part: str, why: str) -> None:
        """A missing source of evidence, with the parameter that supplies it."""
        hint = gaps.source_hint(part, why, self.p)
        self.gap(f"{part}: {why}" + (f": {hint}" if hint else ""))

    def live_only(self, what: str) -> bool:
        """Whether a step that reads the host now may run: not in a replay of a past
        incident (`live=False`), where it says what it skipped."""
        if self.p.live:
            return True
        display(
            Markdown(
                f"*Skipped: {what} describes the host now, and this run replays a "
                "past incident (`live=False`).*"
            )
        )
        return False

    # -- where the service is --------------------------------------------------------------
    @property
    def log_source(self) -> list[str]:
        return log_specs(self.p)

    def logs(self) -> LogSource | None:
        """The log source as this run reads it: saved into the record, or its saved lines."""
        return recording.log_source(self.prom, self.log_source) if self.log_source else None

    @property
    def service_port(self) -> int | None:
        inst = self.scope.instance or ""
        tail = inst.rsplit(":", 1)[-1] if ":" in inst else ""
        return int(tail) if tail.isdigit() else None

    @property
    def top_cause(self) -> str | None:
        return diagnosis.summary(self.verdicts)[1]
