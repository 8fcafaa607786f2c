"""Verdicts follow the share (issue 23, item 3): a cause whose required evidence holds and that
explains most of the symptom with no rival is likely; a cause another mostly explains is at
most possible; a second cause is named as contributing from a fifth of the symptom. One test
on each side of each boundary; every share below is written by hand."""

from __future__ import annotations

import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.diagnosis.engine import differentiate, top_causes
from runbook_lib.diagnosis.model import Evidence, LogFacts, Verdict
from tests.test_absent_series import third_party_signals


def split(**shares: float) -> Attribution:
    """A symptom of 100 units, each cause claiming its share of it."""
    att = Attribution("x", "units", 100.0, tuple(shares))
    for cause, s in shares.items():
        att.claim(cause, 100 * s, f"part {cause}")
    return att


def possible(cause: str, held: bool = True) -> Verdict:
    return Verdict(cause, "possible", 0.5, ["✔ its gate"], required_held=held)


def likely(cause: str) -> Verdict:
    return Verdict(cause, "likely", 1.0, ["✔ its gate"], required_held=True)


# ---------------------------------------------------------------- the incident
def test_a_cause_explaining_nearly_every_error_with_no_rival_is_likely() -> None:
    """418 of 433 errors are the third party's (96.5 %), no other cause claims any; the logs
    were read and show no 5xx line (a secondary fact that fails), the external API's health
    is not exposed (unknown)."""
    logs = LogFacts(counts={"timeout": 40}, error_lines=40, shares={"timeout": 1.0})
    ev = Evidence(third_party_signals({"database": 1.0}), logs=logs)
    verdicts = diagnosis.diagnose("high_error_rate", ev)
    v = {x.cause: x for x in verdicts}["third_party_api"]
    assert (v.verdict, v.explained_share) == ("likely", 0.965)
    assert v.score == 0.5  # its facts alone: errors 1 + share 2 of 1 + 3 + 2
    assert v.evidence[-1] == "✔ explains 96% of the symptom and no other cause explains 20%: likely"
    assert diagnosis.summary(verdicts)[1] == "third_party_api"
    assert [t["cause"] for t in top_causes(verdicts)] == ["third_party_api"]


# ---------------------------------------------------------------- promotion to likely
@pytest.mark.parametrize(("share", "verdict"), [(0.5, "likely"), (0.49, "possible")])
def test_most_of_the_symptom_is_at_least_half(share: float, verdict: str) -> None:
    vs = [possible("a"), possible("b")]
    differentiate(vs, split(a=share, b=0.1))
    assert vs[0].verdict == verdict


@pytest.mark.parametrize(("rival", "verdict"), [(0.19, "likely"), (0.2, "possible")])
def test_a_rival_is_a_cause_explaining_a_fifth(rival: float, verdict: str) -> None:
    vs = [possible("a"), possible("b")]
    differentiate(vs, split(a=0.6, b=rival))
    assert vs[0].verdict == verdict


def test_a_ruled_out_rival_is_still_a_rival() -> None:
    """Its part of the symptom is there, whatever its own rule says."""
    vs = [possible("a"), Verdict("b", "ruled_out", 0.2, required_held=True)]
    differentiate(vs, split(a=0.6, b=0.3))
    assert vs[0].verdict == "possible"


def test_a_cause_whose_gate_did_not_hold_is_not_made_likely() -> None:
    vs = [possible("a", held=False)]
    differentiate(vs, split(a=0.9))
    assert vs[0].verdict == "possible"
    unknown = [Verdict("a", "unknown", 0.0)]
    differentiate(unknown, split(a=0.9))
    assert unknown[0].verdict == "unknown"


def test_a_cause_whose_evidence_weighs_against_it_is_not_made_likely() -> None:
    vs = [Verdict("a", "ruled_out", 0.3, required_held=True)]  # under 0.35: ruled out
    differentiate(vs, split(a=0.9))
    assert vs[0].verdict == "ruled_out"


def test_an_unmeasured_cause_is_no_rival() -> None:
    att = split(a=0.6, b=0.0)
    att.cannot_judge("b", "no series")
    vs = [possible("a"), Verdict("b", "unknown", 0.0)]
    differentiate(vs, att)
    assert vs[0].verdict == "likely" and vs[1].explained_share is None


# ---------------------------------------------------------------- the cap on a minor cause
@pytest.mark.parametrize(("leader", "verdict"), [(0.5, "possible"), (0.49, "likely")])
def test_a_leader_caps_a_minor_likely_cause_from_half(leader: float, verdict: str) -> None:
    vs = [likely("a"), likely("b")]
    differentiate(vs, split(a=leader, b=0.1))
    assert vs[1].verdict == verdict


@pytest.mark.parametrize(("minor", "verdict"), [(0.19, "possible"), (0.2, "likely")])
def test_a_minor_cause_is_one_under_a_fifth(minor: float, verdict: str) -> None:
    vs = [likely("a"), likely("b")]
    differentiate(vs, split(a=0.7, b=minor))
    assert vs[1].verdict == verdict


# ---------------------------------------------------------------- contributing causes
@pytest.mark.parametrize(("second", "named"), [(0.2, ["a", "b"]), (0.19, ["a"])])
def test_a_contributing_cause_explains_at_least_a_fifth(second: float, named: list) -> None:
    vs = [
        Verdict("a", "likely", 1.0, explained_share=0.3),
        Verdict("b", "likely", 1.0, explained_share=second),
    ]
    assert [t["cause"] for t in top_causes(vs)] == named


def test_a_contributing_cause_must_be_likely() -> None:
    vs = [
        Verdict("a", "likely", 1.0, explained_share=0.5),
        Verdict("b", "possible", 0.6, explained_share=0.4),
    ]
    assert [t["cause"] for t in top_causes(vs)] == ["a"]
