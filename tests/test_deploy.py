"""deploy/: the real promtool/amtool checks, rule-test coverage, and the derived fast profile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES, ROOT
from runbook_lib.lab import deploy

DEPLOY = ROOT / "deploy"


def alert_rules() -> dict[str, dict]:
    rules = yaml.safe_load((DEPLOY / "rules" / "alerts.yml").read_text())
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"]}


def test_promtool_and_amtool_pass() -> None:
    failed = [f"{' '.join(r.command)}\n{r.output}" for r in deploy.check() if not r.ok]
    assert not failed, "\n".join(failed)


def test_rule_tests_cover_both_sides_of_every_alert() -> None:
    """Each alert has a case that fires for an '[P-]above' series and stays silent for the
    '[P-]below' series of the same test (so promtool proves the threshold, not just firing)."""
    tests = yaml.safe_load((DEPLOY / "tests" / "alerts_test.yml").read_text())["tests"]
    covered = set()
    for t in tests:
        instances = {
            s["series"].split('instance="')[1].split('"')[0]
            for s in t["input_series"]
            if 'instance="' in s["series"]
        }
        for case in t.get("alert_rule_test", []):
            fired = {a["exp_labels"]["instance"] for a in case.get("exp_alerts", [])}
            for above in fired:
                below = above.replace("above", "below")
                if above.endswith("above") and below in instances and below not in fired:
                    covered.add(case["alertname"])
    assert set(alert_rules()) - covered == set()


def test_every_alert_carries_the_required_labels_and_annotations() -> None:
    for name, rule in alert_rules().items():
        assert {"severity", "component", "team"} <= set(rule["labels"]), name
        assert {"summary", "description", "impact", "runbook"} <= set(rule["annotations"]), name


def test_runbook_alerts_are_all_there() -> None:
    expected = {
        "GgenMcpServiceDown",
        "GgenMcpNoSuccessfulRequests",
        "GgenMcpHighErrorRate",
        "GgenMcpElevatedErrorRate",
        "GgenMcpHighLatency",
        "GgenMcpElevatedLatency",
        "GgenMcpMemoryCritical",
        "GgenMcpElevatedMemoryUsage",
        "GgenMcpIncreasingHeapUsage",
        "GgenMcpLowCacheHitRate",
        "GgenMcpCacheEvictionRateIncreased",
        "GgenMcpHighLibreOfficeProcessCount",
        "GgenMcpHighActiveForks",
        "GgenMcpFileDescriptorExhaustion",
        "GgenMcpHighDiskUsage",
        "GgenMcpHighCPUUsage",
        "GgenMcpSlowQueryDetected",
        "GgenMcpHighRecalcDuration",
        "GgenMcpHighScreenshotDuration",
        "GgenMcpDeploymentCompleted",
        "GgenMcpAvailabilitySLOViolation",
        "GgenMcpLatencySLOViolation",
        "GgenMcpErrorRateSLOViolation",
    }
    assert set(alert_rules()) == expected


@pytest.mark.parametrize("text,seconds", [("1m", 60), ("90s", 90), ("1h30m", 5400), ("2d", 172800)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert deploy.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1x", "m5", "5m "])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        deploy.parse_duration(text)


def test_fast_profile_keeps_expressions_and_shortens_timing(tmp_path: Path) -> None:
    token = tmp_path / "tok"
    token.write_text("t\n")
    prof = deploy.write_profile(
        tmp_path / "p",
        deploy.Targets(ggen_mcp="127.0.0.1:1111", alertmanager="127.0.0.1:2222"),
        webhook_url="http://127.0.0.1:3333/alerts",
        token_file=token,
        memory_limit_bytes=512 << 20,
    )
    fast = {
        r.get("alert") or r["record"]: r
        for f in (tmp_path / "p" / "rules").glob("*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
    }
    for name, rule in alert_rules().items():
        assert fast[name]["expr"] == rule["expr"]
        assert deploy.parse_duration(fast[name]["for"]) < deploy.parse_duration(rule["for"])
    assert fast["ggen_mcp:memory_limit_bytes"]["expr"] == f"vector({512 << 20})"

    prom = yaml.safe_load(prof.prometheus_config.read_text())
    assert prom["global"]["evaluation_interval"] == "1s"
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    assert jobs["ggen-mcp"] == ["127.0.0.1:1111"]
    am = yaml.safe_load(prof.alertmanager_config.read_text())
    hook = next(r for r in am["receivers"] if r["name"] == "runbook")["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:3333/alerts" and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["credentials_file"] == str(token)


def test_memory_limit_is_set_in_one_place() -> None:
    text = "\n".join(p.read_text() for p in (DEPLOY / "rules").glob("*.yml"))
    assert text.count("4294967296") == 1
    # ... and it is the library's setting (contract.config), which the notebooks' default,
    # the panels, the simulator and the scenarios all take
    assert MEMORY_LIMIT_BYTES == 4 * 1024**3
