"""A series that does not exist is unknown, never healthy and never zero (issue 23, item 2):
the fact cannot be judged, counts neither for nor against its cause, and `data_gaps` names
the series. Hand-made evidence after the incident of the issue: 418 of 433 errors are
unclassified errors and timeouts of the tools that call out, and the server exposes no
`ggen_mcp_component_health{component="external_api"}`."""

from __future__ import annotations

import pandas as pd

from runbook_lib import diagnosis
from runbook_lib.diagnosis import facts
from runbook_lib.diagnosis.model import Evidence, LogFacts
from runbook_lib.evidence.signals import Signals

HEALTH = "ggen_mcp_component_health"


def third_party_signals(health: dict[str, float] | None) -> Signals:
    by_tool_type = {
        "screenshot|unknown": 200.0,
        "recalc|unknown": 118.0,
        "render_template|timeout": 100.0,
        "read_table|not_found": 15.0,
    }
    values: dict[str, object] = {
        "errors_by_tool_type": by_tool_type,
        "errors_by_type": {"unknown": 318.0, "timeout": 100.0, "not_found": 15.0},
        "errors_by_tool": {"screenshot": 200.0, "recalc": 118.0, "render_template": 100.0,
                           "read_table": 15.0},
    }  # fmt: skip
    sig = Signals(values=values, series={"health": (HEALTH,)})
    if health is None:
        sig.missing["health"] = "no data for this query in the window"
    else:
        values["health"] = health
    return sig


def by_cause(ev: Evidence) -> dict[str, diagnosis.Verdict]:
    return {v.cause: v for v in diagnosis.diagnose("high_error_rate", ev)}


def test_a_component_without_a_health_series_is_unknown_not_healthy() -> None:
    # the service reports the database's and LibreOffice's health, not the external API's
    ev = Evidence(third_party_signals({"database": 1.0, "libreoffice": 1.0}))
    fact = facts.unhealthy(ev, "external_api")
    assert fact.holds is None
    assert fact.text == "health of external_api"
    assert fact.missing == (
        'health of external_api: no series for component "external_api" '
        f'(reads {HEALTH}{{component="external_api"}})'
    )
    v = by_cause(ev)["third_party_api"]
    assert not any("external_api" in e for e in v.evidence)  # neither for nor against
    assert any("external_api" in m for m in v.missing)
    # the gap is named in data_gaps although the cause itself could be judged
    assert any(
        "third_party_api" in g and f'{HEALTH}{{component="external_api"}}' in g
        for g in diagnosis.unknown_gaps(list(by_cause(ev).values()))
    )


def test_a_reported_health_still_counts_either_way() -> None:
    ev = Evidence(third_party_signals({"external_api": 0.0, "database": 1.0}))
    assert facts.unhealthy(ev, "external_api").holds is True
    assert facts.unhealthy(ev, "database").holds is False
    assert facts.unhealthy(ev, "database").text == "component database reports healthy"


def test_no_health_series_at_all_leaves_every_component_unknown() -> None:
    ev = Evidence(third_party_signals(None))  # the real GGEN MCP server: no component health
    for component in ("external_api", "database", "libreoffice"):
        assert facts.unhealthy(ev, component).holds is None
    verdicts = by_cause(ev)
    assert not any("reports healthy" in e for v in verdicts.values() for e in v.evidence)


def test_missing_health_does_not_lower_the_cause_it_would_have_judged() -> None:
    """Without logs, 418 of 433 errors are the third party's: with the external API's health
    unknown the cause is judged on its error types and its share alone (1 + 2 of 1 + 2)."""
    v = by_cause(Evidence(third_party_signals({"database": 1.0})))["third_party_api"]
    assert (v.verdict, v.score) == ("likely", 1.0)
    assert v.explained_share == 0.965  # 418 / 433


def test_quiet_logs_still_count_as_read() -> None:
    """Logs that were read and show no 5xx line are a fact that fails, not a missing one."""
    logs = LogFacts(counts={"timeout": 40}, error_lines=40, shares={"timeout": 1.0})
    ev = Evidence(third_party_signals({"database": 1.0}), logs=logs)
    fact = facts.log_share(ev, {"http_5xx"}, "HTTP 5xx answers")
    assert fact.holds is False and fact.text.startswith("0 log lines show HTTP 5xx answers")


# ------------------------------------------------------------------ every series, removed
class Without:
    """A Prometheus client answering from `prom` (each question asked of it once), except
    that the series `metric` does not exist: every query reading it has no data."""

    def __init__(self, prom, answers: dict, metric: str = "") -> None:
        self.prom, self.answers, self.metric, self.url = prom, answers, metric, prom.url

    def _ask(self, key: tuple, query: str, ask):
        from runbook_lib.contract.names import series_in
        from runbook_lib.evidence.prom import Failure, QueryResult

        if self.metric and self.metric in series_in(query):
            empty = pd.DataFrame(columns=["timestamp", "value"])
            return QueryResult(query, empty, Failure.NO_DATA, "no data for this query")
        if key not in self.answers:
            self.answers[key] = ask()
        return self.answers[key]

    def instant(self, query, at):
        return self._ask(("i", query, at), query, lambda: self.prom.instant(query, at))

    def range(self, query, start, end, step=None):
        key = ("r", query, start, end, step)
        return self._ask(key, query, lambda: self.prom.range(query, start, end, step))


def _reads(runbook: str, ev: Evidence) -> set[str]:
    """The metrics `runbook`'s rules and attribution read, by the signals they asked for."""
    asked: list[str] = []
    get = Signals.get

    def spy(self, name):
        asked.append(name)
        return get(self, name)

    Signals.get = spy
    try:
        diagnosis.diagnose(runbook, ev)
    finally:
        Signals.get = get
    return {m for name in asked for m in ev.signals.series.get(name, ())}


def test_removing_any_series_never_counts_against_the_true_cause(scenario_set, tmp_path) -> None:
    """Each single-cause scenario (seed 0), each series its runbook reads removed in turn:
    the true cause is not ruled out unless it was, no fact turns against it (no ✘ line that
    was not there), its share does not fall, and every fact it can no longer judge names the
    series."""
    from runbook_lib.diagnosis import investigate
    from runbook_lib.evidence.panels import Scope
    from runbook_lib.evidence.prom import Prom

    prom, scenarios, _ = scenario_set
    client, answers, wrong, removed = Prom(prom.url), {}, [], 0

    def evidence(sc, metric: str) -> Evidence:
        log = sc.write_logs(tmp_path / f"{sc.instance}.log")
        snap = sc.write_host(tmp_path / f"{sc.instance}.json")
        return investigate.gather(investigate.Inputs(
            prom.url, Scope(sc.instance, node_instance=sc.instance + "-node"), sc.at,
            log_source=str(log), host_snapshot=str(snap or ""),
            prom=Without(client, answers, metric),
        ))  # fmt: skip

    for sc in (s for s in scenarios if s.cause and not s.mix and s.seed == 0):
        full = evidence(sc, "")
        before = {v.cause: v for v in diagnosis.diagnose(sc.runbook, full)}[sc.cause]
        for metric in sorted(_reads(sc.runbook, full)):
            removed += 1
            after = {v.cause: v for v in diagnosis.diagnose(sc.runbook, evidence(sc, metric))}
            v = after[sc.cause]
            where = f"{sc.name} without {metric}: {v.verdict}"
            against = [e for e in v.evidence if e.startswith("✘") and e not in before.evidence]
            if v.verdict == "ruled_out" and before.verdict != "ruled_out":
                wrong.append(f"{where}, ruled out")
            if against:
                wrong.append(f"{where}, new facts against it: {against}")
            if None not in (v.explained_share, before.explained_share) and (
                v.explained_share < before.explained_share - 0.001
            ):
                wrong.append(f"{where}, share {before.explained_share} -> {v.explained_share}")
            gone = [m for m in v.missing if m not in before.missing]
            if gone and not any(metric in m for m in gone):
                wrong.append(f"{where}, cannot judge {gone} and does not name {metric}")
            if len(v.evidence) < len(before.evidence) and not gone:
                wrong.append(f"{where}, facts vanished unsaid: {before.evidence} -> {v.evidence}")
    assert wrong == [], "\n".join(wrong)
    assert removed >= 100  # 32 scenarios, each runbook reading several series
