"""The diagnosis engine without Prometheus: how facts become verdicts, how verdicts are
ordered, and what each fact helper says when its evidence is there, false or missing.
Every expected score and sentence below is worked out by hand."""

from __future__ import annotations

import pytest

from runbook_lib.diagnosis import engine as d
from runbook_lib.diagnosis import facts
from runbook_lib.diagnosis.engine import judge
from runbook_lib.diagnosis.model import Evidence, Fact, LogFacts, Verdict
from runbook_lib.evidence.containers import ContainerState
from runbook_lib.evidence.signals import Signals


def ev(values: dict | None = None, missing: dict | None = None, **kw) -> Evidence:
    return Evidence(Signals(values=values or {}, missing=missing or {}, window="15m"), **kw)


# -- judge ---------------------------------------------------------------------------------
def test_a_required_fact_that_cannot_be_judged_makes_the_cause_unknown() -> None:
    v = judge(
        "c",
        [
            Fact(None, "gate", weight=1, required=True, missing="gate: no data"),
            Fact(True, "sign", weight=5),
        ],
    )
    assert (v.verdict, v.score) == ("unknown", 0.0)
    assert v.evidence == ["✔ sign"] and v.missing == ["gate: no data"]


def test_a_required_fact_that_fails_rules_the_cause_out_whatever_else_holds() -> None:
    v = judge("c", [Fact(False, "gate", weight=0, required=True), Fact(True, "sign", weight=9)])
    assert (v.verdict, v.score, v.evidence) == ("ruled_out", 0.0, ["✘ gate", "✔ sign"])


def test_facts_of_no_weight_judge_nothing() -> None:
    v = judge("c", [Fact(True, "a", weight=0), Fact(False, "b", weight=0)])
    assert (v.verdict, v.score) == ("unknown", 0.0)


def test_exclusions_alone_make_a_cause_at_most_possible() -> None:
    v = judge(
        "c", [Fact(True, "not the other cause", weight=2, sign=False), Fact(None, "x", weight=1)]
    )
    assert (v.verdict, v.score) == ("possible", 0.5)
    assert v.missing == ["no direct sign of this cause could be judged", "x"]
    v = judge("c", [Fact(False, "not the other", weight=2, sign=False)])
    assert (v.verdict, v.score) == ("ruled_out", 0.0)


def test_the_score_is_the_weight_that_holds_over_the_weight_judged() -> None:
    v = judge(
        "c",
        [
            Fact(True, "a", weight=2),
            Fact(False, "b", weight=1),
            Fact(None, "c", weight=4, missing="c?"),
        ],
    )
    assert (v.verdict, v.score) == ("possible", 0.67)
    assert v.evidence == ["✔ a", "✘ b"] and v.missing == ["c?"]


# -- diagnose, summary, table ------------------------------------------------------------
def test_without_attribution_verdicts_sort_by_verdict_then_score_then_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = {
        "zeta": lambda e: [Fact(True, "z", weight=1)],  # likely 1.0
        "alpha": lambda e: [Fact(True, "a", weight=1)],  # likely 1.0: same score, name decides
        "middle": lambda e: [
            Fact(True, "m", weight=1),
            Fact(False, "m2", weight=1),
        ],  # possible 0.5
        "gone": lambda e: [Fact(False, "g", weight=1, required=True)],  # ruled out 0.0
        "blind": lambda e: [
            Fact(None, "b", weight=1, required=True)
        ],  # unknown 0.0: after ruled out
    }
    monkeypatch.setitem(d.RULES, "test_runbook", rules)
    verdicts = d.diagnose("test_runbook", ev())
    assert [v.cause for v in verdicts] == ["alpha", "zeta", "middle", "gone", "blind"]
    rows, top = d.summary(verdicts)
    assert top == "alpha" and rows[2] == {
        "cause": "middle",
        "verdict": "possible",
        "score": 0.5,
        "evidence": ["✔ m", "✘ m2"],
        "missing": [],
        "explained_share": None,
        "strongest": ["✔ m"],
    }
    assert d.diagnose("no_such_runbook", ev()) == []


def test_with_an_attribution_the_likely_cause_that_explains_more_comes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runbook_lib.diagnosis.attribution import Attribution

    def attribute(e):
        att = Attribution("test_runbook", "units", 10.0, ("zeta", "alpha", "middle"))
        att.claim("zeta", 6.0, "Z")
        att.claim("alpha", 3.0, "A")
        att.claim("middle", 1.0, "M")
        return att

    rules = {
        "alpha": lambda e: [Fact(True, "a", weight=1)],  # likely 1.0,: 30%
        "zeta": lambda e: [
            Fact(True, "z", weight=3),
            Fact(False, "z2", weight=1),
        ],  # likely 0.75, 60%
        "middle": lambda e: [
            Fact(True, "m", weight=1),
            Fact(False, "m2", weight=1),
        ],  # possible 0.5, 10%
    }
    monkeypatch.setitem(d.RULES, "test_runbook", rules)
    monkeypatch.setitem(d.ATTRIBUTORS, "test_runbook", attribute)
    verdicts = d.diagnose("test_runbook", ev())
    assert [(v.cause, v.explained_share) for v in verdicts] == [
        ("zeta", 0.6),
        ("alpha", 0.3),
        ("middle", 0.1),
    ]
    assert d.summary(verdicts)[1] == "zeta"
    assert [t["cause"] for t in d.top_causes(verdicts)] == ["zeta", "alpha"]
    assert verdicts[1].evidence[-1] == "✔ A: 3.0 of the 10.0 units"


def test_no_likely_cause_means_no_top_cause() -> None:
    rows, top = d.summary([Verdict("a", "possible", 0.6), Verdict("b", "unknown", 0.0)])
    assert top is None and [r["cause"] for r in rows] == ["a", "b"]


def test_pct_and_share() -> None:
    assert d.pct(0.125) == "12%" and d.pct(1) == "100%"
    assert facts.share({"a": 3.0, "b": 1.0}, {"a"}) == 0.75
    assert facts.share({"a": 0.0}, {"a"}) is None and facts.share({}, {"a"}) is None
    assert facts.share(None, {"a"}) is None


# -- fact helpers --------------------------------------------------------------------------
def test_metric_holds_fails_or_says_why_it_is_missing() -> None:
    def fact(e: Evidence) -> Fact:
        return facts.metric(
            e, "cpu", lambda v: v > 0.8, lambda v: f"cpu {v}", weight=2, what="CPU use"
        )

    assert fact(ev({"cpu": 0.9})) == Fact(True, "cpu 0.9", weight=2)
    assert fact(ev({"cpu": 0.1})) == Fact(False, "cpu 0.1", weight=2)
    unreachable = fact(ev(missing={"cpu": "Prometheus is unreachable"}))
    assert unreachable == Fact(
        None, "CPU use", weight=2, required=False, missing="CPU use: Prometheus is unreachable"
    )
    assert fact(ev()).missing == "CPU use: no data"
    assert facts.metric(ev({"health": {}}), "health", bool, str).holds is None  # empty by-label


def test_log_facts_need_logs_and_enough_lines() -> None:
    logs = LogFacts(counts={"fatal": 2}, error_lines=4, shares={"fatal": 0.5}, source="f.log")
    seen = facts.log_seen(ev(logs=logs), "fatal", "a fatal error", weight=3, at_least=2)
    assert seen == Fact(True, "2 log lines with a fatal error", weight=3)
    assert facts.log_seen(ev(logs=logs), "fatal", "x", at_least=3).holds is False
    none = facts.log_seen(ev(logs_missing="no log source was given"), "fatal", "a fatal error")
    assert none.holds is None
    assert none.missing == "log lines with a fatal error: no log source was given"
    unsure = facts.log_fact(ev(logs=logs), lambda lf: None, lambda lf: "", what="pattern")
    assert unsure.holds is None and unsure.missing == "pattern: not enough log lines"


def test_log_share_counts_the_patterns_against_the_error_lines() -> None:
    logs = LogFacts(
        counts={"db_timeout": 3, "connection_refused": 1},
        error_lines=10,
        shares={"db_timeout": 0.3, "connection_refused": 0.1},
    )
    f = facts.log_share(ev(logs=logs), {"db_timeout", "connection_refused"}, "database trouble")
    assert f == Fact(True, "4 log lines show database trouble (40% of 10 error lines)", weight=2.0)
    assert facts.log_share(ev(logs=logs), {"db_timeout"}, "x", min_share=0.31).holds is False
    quiet = LogFacts(counts={}, error_lines=0, shares={})
    assert facts.log_share(ev(logs=quiet), {"db_timeout"}, "x").holds is False


def test_host_facts_need_a_snapshot_holding_the_part() -> None:
    def fact(e: Evidence) -> Fact:
        return facts.host_fact(
            e,
            lambda h: h["zombies"] > 2 if "zombies" in h else None,
            lambda h: f"{h['zombies']} zombies",
            weight=3,
            what="zombie processes",
        )

    assert fact(ev(host={"zombies": 5})) == Fact(True, "5 zombies", weight=3)
    assert fact(ev(host={"zombies": 1})).holds is False
    assert fact(ev(host={})).missing == "zombie processes: not in the host snapshot"
    skipped = fact(ev(host_missing="replaying a past incident"))
    assert skipped.missing == "zombie processes: replaying a past incident"


def test_container_facts_need_a_container_that_could_be_inspected() -> None:
    def fact(c: object) -> Fact:
        return facts.container_fact(
            ev(container=c, container_missing="no container was given"),
            lambda c: c.oom_killed,
            lambda c: f"{c.name} OOMKilled={c.oom_killed}",
            weight=3,
        )

    oom = ContainerState("svc", exists=True, status="exited", oom_killed=True)
    assert fact(oom) == Fact(True, "svc OOMKilled=True", weight=3)
    assert fact(ContainerState("svc", exists=True, status="running")).holds is False
    assert fact(None).missing == "container state: no container was given"
    assert fact(ContainerState("svc", exists=False)).missing == "container state: not found"
    down = ContainerState("svc", exists=True, error="engine unreachable")
    assert fact(down).missing == "container state: engine unreachable"
    known = ContainerState("svc", exists=True, status="exited", error="stats failed")
    assert fact(known).holds is False  # a status was read: the error does not hide it


def test_errors_share_claims_error_types() -> None:
    by = {"invalid_input": 6.0, "parse_error": 2.0, "timeout": 2.0}
    f = facts.errors_share(
        ev({"errors_by_type": by}), {"invalid_input", "parse_error"}, "validation"
    )
    assert f == Fact(
        True, "validation are 80% of errors over the last 15m", weight=3.0, required=True
    )
    low = facts.errors_share(
        ev({"errors_by_type": by}), {"timeout"}, "timeouts", weight=1, required=False, min_share=0.3
    )
    assert low == Fact(
        False, "timeouts are 20% of errors over the last 15m", weight=1, required=False
    )
    none = facts.errors_share(ev(), {"timeout"}, "timeouts")
    assert none.holds is None and none.required
    assert none.missing == "timeouts share of errors: no errors in the window"
    why = facts.errors_share(ev(missing={"errors_by_type": "unreachable"}), {"x"}, "x")
    assert why.missing == "x share of errors: unreachable"


def test_unhealthy_and_down() -> None:
    health = ev({"health": {"database": 0.0, "cache": 1.0}, "up_min": 0.0})
    assert facts.unhealthy(health, "database") == Fact(
        True, "component database reports unhealthy", weight=2.0
    )
    assert facts.unhealthy(health, "cache").text == "component cache reports healthy"
    queue = facts.unhealthy(health, "queue")  # not reported: unknown, never healthy
    assert queue == Fact(None, "health of queue", weight=2.0, required=False, missing='health of queue: no series for '
                         'component "queue" (reads ggen_mcp_component_health{component="queue"})')  # fmt: skip
    assert facts.down(health) == Fact(
        True, "the service stopped answering scrapes in the window", weight=0.0, required=True
    )
    up = facts.down(ev({"up_min": 1.0}), required=False)
    assert up == Fact(
        False, "the service answered every scrape in the window", weight=0.0, required=False
    )


# -- defaults and boundaries, spelled out ------------------------------------------------
def test_missing_evidence_facts_keep_their_defaults() -> None:
    assert facts.log_fact(ev(), bool, str) == Fact(
        None,
        "log evidence",
        weight=1.0,
        required=False,
        missing="log evidence: no log source was given",
        sign=True,
    )
    assert facts.host_fact(ev(), bool, str) == Fact(
        None,
        "host evidence",
        weight=1.0,
        required=False,
        missing="host evidence: host checks were not run",
    )
    assert facts.host_fact(
        ev(host={}), lambda h: None, str, weight=2, required=True, what="x"
    ) == Fact(None, "x", weight=2, required=True, missing="x: not in the host snapshot")
    assert facts.container_fact(ev(), bool, str) == Fact(
        None,
        "container state",
        weight=1.0,
        required=False,
        missing="container state: no container was given",
    )
    unknown = ContainerState("svc", exists=None, error="engine unreachable")
    assert facts.container_fact(ev(container=unknown), bool, str).missing == (
        "container state: engine unreachable"
    )

    class Bare:  # an object that says nothing about itself
        pass

    assert (
        facts.container_fact(ev(container=Bare()), bool, str).missing
        == "container state: not found"
    )
    assert facts.metric(ev(), "p95", bool, str) == Fact(
        None, "p95", weight=1.0, required=False, missing="p95: no data", sign=True
    )
    assert facts.metric(ev(), "p95", bool, str, sign=False).sign is False
    assert facts.down(ev()) == Fact(
        None,
        "scrape status",
        weight=0.0,
        required=True,
        missing="scrape status: no data",
        sign=True,
    )
    assert facts.unhealthy(ev(), "db").missing == "health of db: no data"


def test_facts_that_hold_keep_required_and_sign() -> None:
    logs = LogFacts(counts={"fatal": 1}, error_lines=1, shares={"fatal": 1.0})
    f = facts.log_fact(
        ev(logs=logs), lambda lf: True, lambda lf: "yes", weight=3, required=True, sign=False
    )
    assert f == Fact(True, "yes", weight=3, required=True, missing="", sign=False)
    assert facts.host_fact(
        ev(host={"a": 1}), lambda h: True, lambda h: "h", weight=2, required=True
    ) == Fact(True, "h", weight=2, required=True)
    assert facts.metric(ev({"x": 1}), "x", bool, str, weight=2, required=True, sign=False) == Fact(
        True, "1", weight=2, required=True, missing="", sign=False
    )


def test_log_seen_counts_lines_and_defaults_to_one() -> None:
    logs = LogFacts(counts={"fatal": 1}, error_lines=1, shares={})
    assert facts.log_seen(ev(logs=logs), "fatal", "fatal errors") == Fact(
        True, "1 log lines with fatal errors", weight=2.0
    )
    assert facts.log_seen(ev(logs=logs), "oom", "OOM kills") == Fact(
        False, "0 log lines with OOM kills", weight=2.0
    )


def test_shares_at_exactly_the_threshold_count() -> None:
    by = {"invalid_input": 1.0, "timeout": 1.0}
    assert facts.errors_share(ev({"errors_by_type": by}), {"invalid_input"}, "x").holds is True
    logs = LogFacts(counts={"a": 3}, error_lines=10, shares={"a": 0.3})
    share = facts.log_share(ev(logs=logs), {"a", "b"}, "a or b")
    assert share == Fact(True, "3 log lines show a or b (30% of 10 error lines)", weight=2.0)
    one = LogFacts(counts={"a": 1}, error_lines=1, shares={"a": 1.0})
    assert facts.log_share(ev(logs=one), {"a"}, "a").holds is True
    assert (
        facts.log_share(ev(), {"a"}, "a").missing == "log lines showing a: no log source was given"
    )
    assert facts.share({"a": 0.25, "b": 0.25}, {"a"}) == 0.5


def test_a_sign_of_no_weight_is_no_sign() -> None:
    v = judge(
        "c",
        [
            Fact(True, "weightless sign", weight=0),
            Fact(True, "excludes others", weight=1, sign=False),
        ],
    )
    assert (v.verdict, v.score) == ("possible", 0.5)
    ruled = judge(
        "c",
        [
            Fact(False, "gate", weight=0, required=True, missing="m"),
            Fact(None, "x", weight=1, missing="gone"),
        ],
    )
    assert ruled.missing == ["gone"] and ruled.evidence == ["✘ gate"]


def test_rule_registers_under_each_runbook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(d, "RULES", {})
    monkeypatch.setattr(d, "CAUSES", {})  # registering also makes Cause objects

    @d.rule(("fork_leak", "libreoffice_leak"), "zombies")
    def zombies(e: Evidence) -> list[Fact]:
        return []

    @d.rule("memory", "leak")
    def leak(e: Evidence) -> list[Fact]:
        return []

    assert d.RULES == {
        "fork_leak": {"zombies": zombies},
        "libreoffice_leak": {"zombies": zombies},
        "memory": {"leak": leak},
    }
    assert set(d.CAUSES) == {"zombies", "leak"}
    assert d.CAUSES["zombies"].rules == {"fork_leak": zombies, "libreoffice_leak": zombies}


def test_every_missing_path_keeps_its_fields() -> None:
    none = facts.errors_share(ev(), {"timeout"}, "timeouts", weight=1.5, required=False)
    assert none == Fact(None, "timeouts share of errors", weight=1.5, required=False,
                        missing="timeouts share of errors: no errors in the window")  # fmt: skip
    logs = LogFacts(counts={}, error_lines=3, shares={})
    unsure = facts.log_fact(
        ev(logs=logs), lambda lf: None, str, weight=2.5, required=True, what="x", sign=False
    )
    assert unsure == Fact(
        None, "x", weight=2.5, required=True, missing="x: not enough log lines", sign=False
    )
    no_logs = facts.log_fact(ev(), bool, str, weight=2, required=True, what="y", sign=False)
    assert no_logs == Fact(
        None, "y", weight=2, required=True, missing="y: no log source was given", sign=False
    )
    weightless = judge("c", [Fact(True, "a", weight=0), Fact(False, "b", weight=0)])
    assert weightless.evidence == ["✔ a", "✘ b"] and weightless.missing == []


def test_a_pattern_missing_from_the_shares_adds_nothing() -> None:
    logs = LogFacts(counts={"a": 1}, error_lines=10, shares={"a": 0.1})
    assert facts.log_share(ev(logs=logs), {"a", "absent"}, "x", min_share=0.5).holds is False
