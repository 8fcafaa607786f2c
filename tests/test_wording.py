"""Causes by name, evidence for apart from evidence against, the causes in one table."""

from __future__ import annotations

import re

import pytest

from runbook_lib.diagnosis.model import Verdict
from runbook_lib.notebook.display import causes_html
from runbook_lib.notebook.wording import cause_name, evidence_html, for_and_against, merged


@pytest.mark.parametrize(
    ("cause", "name"),
    [
        ("cpu_saturation", "CPU saturation"),
        ("libreoffice_bottleneck", "LibreOffice bottleneck"),
        ("fd_limit_too_low", "File descriptor limit too low"),
        ("oom_killed", "OOM killed"),
        ("ttl_too_short", "TTL too short"),
        ("third_party_api", "Third party API"),
        ("slow_database_queries", "Slow database queries"),
    ],
)
def test_a_cause_is_named_as_people_write_it(cause: str, name: str) -> None:
    assert cause_name(cause) == name


def test_evidence_splits_into_for_and_against() -> None:
    lines = ["✔ 62% of errors are validation errors", "✘ the database is healthy", "✔ 3 lines"]
    assert for_and_against(lines) == (
        ["62% of errors are validation errors", "3 lines"],
        ["the database is healthy"],
    )


def test_one_reason_for_many_series_is_said_once() -> None:
    lines = [
        "memory_r2: Prometheus at http://p:1 is unreachable (reads rss)",
        "memory_jumps: Prometheus at http://p:1 is unreachable (reads rss)",
        "host load: replaying a past incident",  # 'host load' is words, not a series name
        "the symptom could not be split",
    ]
    assert merged(lines) == [
        "memory_r2, memory_jumps: Prometheus at http://p:1 is unreachable (reads rss)",
        "host load: replaying a past incident",
        "the symptom could not be split",
    ]


def _items(page: str, key: str) -> list[str]:
    lists = re.findall(rf"<ul class='evidence-{key}'[^>]*>(.*?)</ul>", page)
    return [
        re.sub(r"<[^>]+>", "", x) for ul in lists for x in re.findall(r"<li[^>]*>(.*?)</li>", ul)
    ]


def test_evidence_groups_are_labelled_and_escaped() -> None:
    page = evidence_html(["✔ <b>held</b>", "✘ did not"], ["a: no data"])
    assert _items(page, "for") == ["✔ &lt;b&gt;held&lt;/b&gt;"]
    assert _items(page, "against") == ["✘ did not"] and _items(page, "unjudged") == ["? a: no data"]
    labels = re.findall(r"<b>([^<]+)</b>", page)
    assert labels == ["for", "against", "cannot judge"]


def test_the_causes_table_keeps_the_diagnosis_order_with_names_and_shares() -> None:
    """One table: the diagnosis ranks the causes; names, not ids; the share explained."""
    verdicts = [
        Verdict("slow_database_queries", "likely", 1.0, ["✔ query p95 is 14.7 s"], [], 0.73),
        Verdict("libreoffice_bottleneck", "likely", 0.9, ["✔ recalc p95 is 18.7 s"], [], 0.27),
        Verdict("cpu_saturation", "ruled_out", 0.0, ["✘ 0.15 cores"], ["host load: no host"]),
    ]
    page = causes_html(verdicts)
    names = re.findall(r"<td style='text-align:left'><b>([^<]+)</b></td>", page)
    assert names == ["Slow database queries", "LibreOffice bottleneck", "CPU saturation"]
    rows = re.findall(r"<tr class='cause-(\w+)'>.*?<td>([\d.]+)</td><td>(\d*%?)</td>", page)
    assert rows == [("likely", "1.00", "73%"), ("likely", "0.90", "27%"), ("ruled_out", "0.00", "")]
    assert _items(page, "against") == ["✘ 0.15 cores"]
    assert "ruled out" in page and "ruled_out</td>" not in page
