""" "Nothing explains this" is an answer (issue 23, item 4): when the causes explain less than
half of the symptom, the record's lead, the message and the diagnosis cell say so first, list
what was checked and point to the manual steps; the summary carries `unexplained_share`.
The summary below is the issue's incident: 0.38 s of 9.17 s added p95 explained."""

from __future__ import annotations

import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis.answer import unexplained, unexplained_share
from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.notebook.display import answer_md
from runbook_lib.records.lead import lead_html
from runbook_lib.service.messages import _finding
from tests.conftest import summary_of


def summary(explained_s: float, top: str | None = None) -> dict:
    """9.17 s added; cache thrashing claims `explained_s` of it."""
    cache = {
        "cause": "cache_thrashing",
        "verdict": "likely" if top else "possible",
        "score": 0.67,
        "evidence": ["✔ cache hit rate is 24%"],
        "explained_share": round(explained_s / 9.17, 3),
    }
    cpu = {"cause": "cpu_saturation", "verdict": "ruled_out", "score": 0.0, "evidence": [],
           "explained_share": 0.0}  # fmt: skip
    memory = {"cause": "memory_pressure", "verdict": "unknown", "score": 0.0, "evidence": [],
              "explained_share": None}  # fmt: skip
    return {
        "alert": "GgenMcpHighLatency",
        "runbook": "high_latency",
        "status": "completed",
        "severity": "critical",
        "starts_at": "2026-01-15T10:00:00Z",
        "diagnosis": [cache, cpu, memory],
        "top_cause": top,
        "top_causes": [{"cause": top, "explained_share": cache["explained_share"], "score": 0.67}]
        if top
        else [],
        "attribution": {"of_what": "s added", "total": 9.17, "unexplained": 9.17 - explained_s},
        "unexplained_share": round(1 - explained_s / 9.17, 3),
    }


def test_the_issue_incident_says_nothing_explains_it() -> None:
    said = unexplained(summary_of(summary(0.38)))
    assert said is not None
    assert said.share == 0.959  # 8.79 / 9.17
    assert said.headline == "No runbook cause explains 96% of the added latency"
    assert said.checked == [
        "cache_thrashing: possible, explains 4%",
        "cpu_saturation: ruled out, explains 0%",
        "memory_pressure: unknown",
    ]
    assert "investigation steps" in said.manual and "escalate" in said.manual


@pytest.mark.parametrize(("explained_s", "said"), [(4.585, False), (4.5, True)])
def test_it_is_said_when_causes_explain_less_than_half(explained_s: float, said: bool) -> None:
    """4.585 of 9.17 s is exactly half: explained, not said; 4.5 s is 49 %: said."""
    assert (unexplained(summary_of(summary(explained_s))) is not None) is said


def test_an_unsplit_symptom_says_nothing_of_the_kind() -> None:
    assert (
        unexplained(
            summary_of({"runbook": "service_down", "status": "completed", "attribution": None})
        )
        is None
    )
    assert unexplained_share(None) is None


def test_the_summary_share_is_what_no_cause_claims() -> None:
    att = Attribution("high_latency", "s", 9.17, ("cache_thrashing", "cpu_saturation"))
    att.claim("cache_thrashing", 0.38, "cache misses")
    assert unexplained_share(att) == 0.959


def test_a_record_from_before_the_key_is_read_from_its_attribution() -> None:
    old = summary(0.38)
    del old["unexplained_share"]
    assert unexplained(summary_of(old)).share == 0.959


def test_the_lead_says_it_first_then_what_was_checked_and_the_manual_steps() -> None:
    html = lead_html(summary_of(summary(0.38)))
    first = html.index("No runbook cause explains 96% of the added latency")
    assert first < html.index("No cause is likely")
    assert "cache_thrashing: possible, explains 4%" in html
    assert "Manual steps:" in html


def test_the_lead_says_it_before_a_top_cause_that_explains_little() -> None:
    html = lead_html(summary_of(summary(3.0, top="cache_thrashing")))  # 33 % explained
    assert html.index("No runbook cause explains 67% of the added latency") < html.index(
        "Top cause: Cache thrashing"
    )


def test_a_cause_that_explains_most_leads_alone() -> None:
    html = lead_html(summary_of(summary(8.0, top="cache_thrashing")))
    assert "No runbook cause explains" not in html


def test_the_message_says_it_first() -> None:
    text = _finding(summary_of(summary(0.38)), None)
    lines = text.splitlines()
    assert lines[0] == "No runbook cause explains 96% of the added latency"
    assert lines[1].startswith("Checked: cache_thrashing: possible, explains 4%;")
    assert lines[2].startswith("Manual steps: work through the runbook's investigation steps")
    assert "No cause is likely" in text  # what was there before still follows


def test_the_diagnosis_cell_says_it_first() -> None:
    att = Attribution("high_latency", "s", 9.17, ("cache_thrashing",))
    att.claim("cache_thrashing", 0.38, "cache misses")
    verdicts = [diagnosis.Verdict("cache_thrashing", "possible", 0.67, explained_share=0.041)]
    text = answer_md(verdicts, att, "high_latency")
    assert text.startswith("**No runbook cause explains 96% of the added latency.**")
    assert "**No cause is likely.**" in text
