"""The thresholds table against the alert rules that fire on it, and its users."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from runbook_lib.contract.thresholds import THRESHOLDS, Level, Threshold

RULES = Path(__file__).resolve().parents[1] / "deploy" / "rules" / "alerts.yml"
COMPARISON = re.compile(r"\s*([<>]=?)\s*([0-9.e+]+)\s*$")


def _alerts(text: str) -> dict[str, dict]:
    doc = yaml.safe_load(text)
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def mismatches(rules_text: str) -> list[str]:
    """Each disagreement between the table and the rules, in words."""
    alerts, out = _alerts(rules_text), []
    for t in THRESHOLDS.values():
        for level in (t.warn, t.crit):
            if level is None or level.alert is None:
                continue
            rule = alerts.get(level.alert)
            if rule is None:
                out.append(f"{t.name}: no alert rule {level.alert}")
                continue
            m = COMPARISON.search(rule["expr"])
            if m is None:
                out.append(f"{level.alert}: expression does not end in a comparison")
                continue
            op, value = m.group(1), float(m.group(2))
            if op[0] != ("<" if t.below_is_bad else ">"):
                out.append(f"{level.alert}: compares with {op}")
            if value != pytest.approx(level.value / t.rule_scale):
                out.append(f"{level.alert}: rule says {value:g}, table {level.value:g}")
            if str(rule.get("for", "")) != level.for_:
                out.append(f"{level.alert}: for {rule.get('for')}, table {level.for_}")
    return out


def test_table_agrees_with_the_rules() -> None:
    assert mismatches(RULES.read_text()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("ggen_mcp:memory_usage_percent > 90", "ggen_mcp:memory_usage_percent > 85"),
            "GgenMcpMemoryCritical: rule says 85, table 90",
        ),
        (
            ("ggen_mcp:fd_usage_ratio > 0.8", "ggen_mcp:fd_usage_ratio > 0.9"),
            "GgenMcpFileDescriptorExhaustion: rule says 0.9, table 80",
        ),
        (
            (
                "ggen_mcp:cache_hit_rate_percentage:5m < 50",
                "ggen_mcp:cache_hit_rate_percentage:5m > 50",
            ),
            "GgenMcpLowCacheHitRate: compares with >",
        ),
        (
            ("- alert: GgenMcpHighDiskUsage", "- alert: GgenMcpDiskFilling"),
            "disk: no alert rule GgenMcpHighDiskUsage",
        ),
    ],
)
def test_a_rule_changed_without_the_table_fails(edit: tuple[str, str], expected: str) -> None:
    text = RULES.read_text()
    assert edit[0] in text
    assert mismatches(text.replace(edit[0], edit[1])) == [expected]


def test_every_alert_with_a_numeric_bound_is_in_the_table() -> None:
    """A new threshold alert must be added to the table (rules comparing with 0, such as
    "no successful request", have no threshold)."""
    covered = {
        lvl.alert for t in THRESHOLDS.values() for lvl in (t.warn, t.crit) if lvl and lvl.alert
    }
    bounded = {
        name
        for name, r in _alerts(RULES.read_text()).items()
        if (m := COMPARISON.search(r["expr"])) and float(m.group(2)) != 0
    }
    assert bounded - covered == set()


def test_rule_text_reads_as_people_write_it() -> None:
    assert THRESHOLDS["memory"].rule_text() == "rule: > 90 % for 5 m"
    assert THRESHOLDS["memory"].rule_text("warn") == "rule: > 70 % for 10 m"
    assert THRESHOLDS["cache_hit_rate"].rule_text() == "rule: < 50 % for 10 m"
    assert THRESHOLDS["cpu"].rule_text() == "rule: > 0.8 cores for 5 m"
    assert Threshold("x", "").rule_text() == ""
    assert Threshold("x", "", warn=Level(3)).rule_text() == "rule: > 3"


def test_breached_respects_direction() -> None:
    assert THRESHOLDS["memory"].breached(91, "crit") and not THRESHOLDS["memory"].breached(
        90, "crit"
    )
    assert THRESHOLDS["cache_hit_rate"].breached(49, "crit")
    assert not THRESHOLDS["cache_hit_rate"].breached(55, "crit")
    assert THRESHOLDS["cache_hit_rate"].breached(55, "warn")
    assert not THRESHOLDS["descriptors"].breached(99, "warn")  # no warning level
