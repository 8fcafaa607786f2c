"""The rule files rendered for one installation: every runbook_url leads to its external
URL, its memory limit is recorded, each file says which version rendered it; the rendered
files pass `promtool check rules` and the promtool unit tests of deploy/tests with the
external URL put in where the tests expect the template's; rendering twice changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from runbook_lib.contract.settings import ROOT, RULES
from runbook_lib.service import rulefiles

BASE = "https://runbook.example.internal:18777"
LIMIT = 2 << 30


def write(dest: Path, profile: str = "contract") -> list[Path]:
    return [w.path for w in rulefiles.write(dest, runbook_base=BASE, memory_limit_bytes=LIMIT,
                                            profile=profile)]  # fmt: skip


def test_every_link_leads_here_and_the_memory_limit_is_recorded(tmp_path: Path) -> None:
    alerts, recording, receiver = write(tmp_path)
    assert [p.name for p in (alerts, recording, receiver)] == [
        "alerts.yml", "recording.yml", "receiver.yml"
    ]  # fmt: skip
    rules = yaml.safe_load(alerts.read_text())
    urls = [r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"]
            if "runbook_url" in r.get("annotations", {})]  # fmt: skip
    assert len(urls) == 23  # every GGEN MCP alert; the receiver's own alerts have none
    assert all(u.startswith(f"{BASE}/incidents/latest?alertname=") for u in urls)
    assert "127.0.0.1:8080" not in alerts.read_text()
    recorded = yaml.safe_load(recording.read_text())
    [limit] = [r for g in recorded["groups"] for r in g["rules"]
               if r.get("record") == "ggen_mcp:memory_limit_bytes"]  # fmt: skip
    assert limit["expr"] == "vector(2147483648)"
    info = [
        r for g in rules["groups"] for r in g["rules"] if r.get("record") == "runbook_rules_info"
    ]
    assert info == [{"record": "runbook_rules_info", "expr": "vector(1)", "labels": {
        "file": "alerts.yml", "version": rulefiles.version(RULES / "alerts.yml"), "runbook_url": BASE}}]  # fmt: skip
    assert alerts.read_text().startswith("# Rendered by `runbook rules render`")


def test_rendering_again_changes_nothing_and_a_new_url_changes_every_file(tmp_path) -> None:
    write(tmp_path)
    again = rulefiles.write(tmp_path, runbook_base=BASE, memory_limit_bytes=LIMIT)
    assert [w.changed for w in again] == [False, False, False]
    moved = rulefiles.write(tmp_path, runbook_base="http://elsewhere:1", memory_limit_bytes=LIMIT)
    assert [w.changed for w in moved] == [True, True, True]  # each file's info names the URL


def test_the_server_profile_renders_its_recording_rules_under_the_same_name(tmp_path) -> None:
    _, recording, _ = write(tmp_path, "server")
    assert recording.name == "recording.yml"
    assert f"# {RULES / 'server' / 'recording.yml'}\n" in recording.read_text()
    assert "mcp_requests_total_total" in recording.read_text()


def test_the_version_changes_with_the_template(tmp_path: Path) -> None:
    copy = tmp_path / "alerts.yml"
    shutil.copy(RULES / "alerts.yml", copy)
    before = rulefiles.version(copy)
    copy.write_text(copy.read_text() + "\n# an edit\n")
    assert rulefiles.version(copy) != before
    assert before.startswith(rulefiles.package_version() + "+") and len(before.split("+")[-1]) == 12


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_rendered_files_pass_promtool_and_the_rule_unit_tests_with_this_url(tmp_path) -> None:
    """The layout of deploy/: rules/ rendered (the server's recording rules under
    rules/server/), tests/ as written with the template's URL replaced by ours."""
    rules = tmp_path / "rules"
    for name, template in {**rulefiles.sources("contract"),
                           "server/recording.yml": RULES / "server" / "recording.yml"}.items():  # fmt: skip
        out = rules / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rulefiles.rendered_text(name, template, runbook_base=BASE,
                                               memory_limit_bytes=4 << 30))  # fmt: skip
    checked = promtool(
        "check", "rules", *(str(p) for p in sorted(rules.rglob("*.yml"))), cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = tmp_path / "tests"
    tests.mkdir()
    for case in (ROOT / "deploy" / "tests").glob("*.yml"):
        text = case.read_text()
        assert text.count(rulefiles.TEMPLATE_BASE) == text.count("runbook_url:")
        (tests / case.name).write_text(text.replace(rulefiles.TEMPLATE_BASE, BASE))
    ran = promtool("test", "rules", *sorted(p.name for p in tests.glob("*.yml")), cwd=tests)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # and the same tests fail against the templates, which link elsewhere (the smallest file
    # that checks a link: alerts_test.yml's 29 took promtool 6 CPU-s to fail)
    shutil.rmtree(rules)
    shutil.copytree(RULES, rules)
    stale = promtool("test", "rules", "server_recording_test.yml", cwd=tests)
    assert stale.returncode != 0 and BASE in stale.stdout + stale.stderr
