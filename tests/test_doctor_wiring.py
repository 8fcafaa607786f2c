"""`runbook doctor` checks the wiring and names the fix: the rules Prometheus loaded, its first
scrape of GGEN MCP, Alertmanager's route to this receiver, the token, the receiver. The
JSON and YAML below were captured from a real Prometheus 2.42 and Alertmanager 0.25."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from runbook_lib.service import doctor, rulefiles, wiring
from runbook_lib.service import wiring_checks as wc
from runbook_lib.service.wiring_checks import Check
from tests.conftest import empty_config


def targets(*entries: dict) -> dict:
    return {"status": "success", "data": {"activeTargets": list(entries), "droppedTargets": []}}


UNSCRAPED = {
    "labels": {"instance": "127.0.0.1:40649", "job": "ggen-mcp"},
    "scrapeUrl": "http://127.0.0.1:40649/metrics",
    "lastError": "",
    "lastScrape": "0001-01-01T00:00:00Z",
    "health": "unknown",
    "scrapeInterval": "1h",
}
DOWN = {
    "labels": {"instance": "127.0.0.1:1", "job": "ggen-mcp"},
    "scrapeUrl": "http://127.0.0.1:1/metrics",
    "lastError": 'Get "http://127.0.0.1:1/metrics": dial tcp 127.0.0.1:1: connect: '
    "connection refused",
    "lastScrape": "2026-11-30T05:29:46.747896257Z",
    "health": "down",
    "scrapeInterval": "1s",
}
UP = {
    "labels": {"instance": "127.0.0.1:40649", "job": "ggen-mcp"},
    "scrapeUrl": "http://127.0.0.1:40649/metrics",
    "lastError": "",
    "lastScrape": "2026-11-30T05:32:14.587719982Z",
    "health": "up",
    "scrapeInterval": "1s",
}
NODE = {**UP, "labels": {"instance": "127.0.0.1:40375", "job": "node-exporter"}}
# Alertmanager's /api/v2/status config.original of the local stack (its globals left out).
AM_CONFIG = """\
route:
  receiver: "null"
  group_by:
  - alertname
  - instance
  continue: false
  routes:
  - receiver: runbook
    matchers:
    - alertname=~"GgenMcp.*"
    continue: false
receivers:
- name: "null"
- name: runbook
  webhook_configs:
  - send_resolved: true
    http_config:
      authorization:
        type: Bearer
        credentials_file: /tmp/h1/st1/webhook-token
      follow_redirects: true
      enable_http2: true
    url: http://127.0.0.1:49261/alerts
    max_alerts: 0
templates: []
"""  # fmt: skip


def test_no_scrape_yet_says_wait_one_interval_instead_of_listing_metrics() -> None:
    found = wc.scrape_check(targets(UNSCRAPED, NODE), "ggen-mcp")
    assert found.waiting
    assert found.check == Check("first scrape", False,
                                "no scrape yet of http://127.0.0.1:40649/metrics",
                                "wait ~1h (one scrape interval) and run `runbook doctor` again")  # fmt: skip


def test_a_scraped_target_passes_and_a_down_one_names_its_error() -> None:
    assert wc.scrape_check(targets(NODE, UP), "ggen-mcp") == wc.Scrape(
        Check("first scrape", True, "1 of 1 ggen-mcp targets up"), False
    )
    down = wc.scrape_check(targets(DOWN), "ggen-mcp")
    assert not down.waiting and down.check == Check(
        "first scrape", False,
        'http://127.0.0.1:1/metrics is down: Get "http://127.0.0.1:1/metrics": dial tcp '
        "127.0.0.1:1: connect: connection refused",
        "start GGEN MCP at http://127.0.0.1:1/metrics, or correct the target's address in "
        "prometheus.yml",
    )  # fmt: skip


def test_no_target_waits_after_a_start_and_otherwise_names_the_scrape_job() -> None:
    now = datetime.now(UTC)
    young = wc.scrape_check(targets(NODE), "ggen-mcp", now - timedelta(seconds=5))
    assert young.waiting and young.check.detail == (
        "no target discovered yet (Prometheus just started)"
    )
    old = wc.scrape_check(targets(NODE), "ggen-mcp", now - timedelta(hours=2))
    assert not old.waiting and old.check == Check(
        "first scrape", False, "Prometheus has no target of job ggen-mcp",
        "add a scrape job named ggen-mcp for the GGEN MCP server's /metrics to prometheus.yml",
    )  # fmt: skip
    federated = wc.scrape_check(targets(), "ggen-mcp", None, has_series=True)
    assert federated.check.ok and not federated.waiting


def test_prometheus_start_time_is_read_from_runtimeinfo() -> None:
    answer = {"status": "success", "data": {"startTime": "2026-11-30T05:29:29.454259907Z"}}
    assert wc.started_at(answer) == datetime(2026, 11, 30, 5, 29, 29, 454259, UTC)
    assert wc.started_at(None) is None and wc.started_at({"data": {}}) is None


def rules_answer(names: list[tuple[str, str]], url: str = "", info: dict | None = None) -> dict:
    """Prometheus' /api/v1/rules holding `names` (alerts linking to `url`), and the
    runbook_rules_info series of `info` (file -> version)."""
    rules = [{"name": n, "type": kind} for n, kind in names]
    for r in rules:
        if r["type"] == "alerting" and r["name"].startswith("GgenMcp"):  # as the files have it
            r["annotations"] = {"runbook_url": f"{url}/incidents/latest?alertname={r['name']}"}
    rules += [{"name": "runbook_rules_info", "type": "recording",
               "labels": {"file": f, "version": v}} for f, v in (info or {}).items()]  # fmt: skip
    return {"status": "success", "data": {"groups": [{"name": "g", "rules": rules}]}}


RENDERED = Path("/etc/runbook/rules")


def current(profile: str = "contract") -> dict[str, str]:
    return {name: rulefiles.version(src) for name, src in rulefiles.sources(profile).items()}


def test_the_rules_check_counts_alerts_and_recordings_and_prints_the_rule_files() -> None:
    alerts, records = wc.expected_rules("contract")
    # as the local stack's Prometheus loads: 23 on GGEN MCP, 2 on this receiver
    assert len(alerts) == 25 and len(records) == 24
    assert "GgenMcpHighErrorRate" in alerts and "ggen_mcp:error_rate_percent:5m" in records
    assert "RunbookWebhooksRefused" in alerts and "RunbookDeliveriesGivenUp" in alerts
    every = rules_answer([(a, "alerting") for a in alerts] + [(r, "recording") for r in records],
                         "http://rb:18777", current())  # fmt: skip
    assert wc.rules_checks(every, "contract", "http://rb:18777", RENDERED) == [
        Check("rules", True, "25 of 25 alert rules, 24 of 24 recording rules loaded"),
        Check("rule links", True, "every runbook_url leads to http://rb:18777"),
        Check("rule version", True, f"rendered by this package ({rulefiles.package_version()})"),
    ]
    alerts_only = rules_answer([(a, "alerting") for a in alerts])
    [check] = wc.rules_checks(alerts_only, "contract", "http://rb:18777", RENDERED)
    assert not check.ok and check.detail.startswith(
        "25 of 25 alert rules, 0 of 24 recording rules loaded; missing ggen_mcp:"
    )
    assert check.detail.endswith(" and 20 more")
    assert check.fix == (
        "`runbook rules render` (it writes them into /etc/runbook/rules); load them in "
        "prometheus.yml, then reload Prometheus:\nrule_files:\n"
        "  - /etc/runbook/rules/alerts.yml\n  - /etc/runbook/rules/recording.yml\n"
        "  - /etc/runbook/rules/receiver.yml\n"
    )


def test_rules_linking_elsewhere_or_from_another_version_are_named_with_the_render_fix() -> None:
    alerts, records = wc.expected_rules("contract")
    names = [(a, "alerting") for a in alerts] + [(r, "recording") for r in records]
    old = {**current(), "alerts.yml": "0.0.9+0123456789ab"}
    del old["receiver.yml"]
    answer = rules_answer(names, "http://127.0.0.1:8080", old)
    _, links, version = wc.rules_checks(answer, "contract", "http://127.0.0.1:18777/", RENDERED)
    assert links == Check(
        "rule links", False,
        "23 of 23 alerts link to http://127.0.0.1:8080, not to this receiver (http://127.0.0.1:18777)",
        "`runbook rules render` writes them for http://127.0.0.1:18777 (external_url in "
        "runbook.toml) into /etc/runbook/rules; then reload Prometheus",
    )  # fmt: skip
    assert not version.ok and version.detail == (
        f"alerts.yml was rendered by 0.0.9+0123456789ab, this package is "
        f"{current()['alerts.yml']}; receiver.yml was not rendered by `runbook rules render`"
    )
    assert version.fix.startswith("`runbook rules render` (into /etc/runbook/rules)")


def test_the_server_profile_expects_its_own_recording_rules() -> None:
    _, records = wc.expected_rules("server")
    _, contract = wc.expected_rules("contract")
    assert "ggen_mcp:memory_usage_percent" in contract - records  # not derivable from mcp_*
    assert current("server")["recording.yml"] != current()["recording.yml"]


def test_alertmanager_wired_to_this_receiver_has_no_problem() -> None:
    assert wc.alertmanager_problems(AM_CONFIG, "http://127.0.0.1:49261/alerts") == []


def whats(problems: list[wc.Problem]) -> list[str]:
    return [p.what for p in problems]


def test_alertmanager_sending_elsewhere_or_without_the_token_is_named() -> None:
    [elsewhere] = wc.alertmanager_problems(AM_CONFIG, "http://runbook:8080/alerts", "", "/t")
    assert elsewhere.what == (
        "no webhook receiver sends to http://runbook:8080/alerts (its webhooks: "
        "http://127.0.0.1:49261/alerts)"
    )
    assert elsewhere.fix == ("add this route and receiver to alertmanager.yml, then reload it:\n"
                             + wiring.alertmanager_snippet("http://runbook:8080/alerts", "/t"))  # fmt: skip
    lax = AM_CONFIG.replace("send_resolved: true", "send_resolved: false").replace(
        "        credentials_file: /tmp/h1/st1/webhook-token\n", ""
    )
    resolved, auth = wc.alertmanager_problems(lax, "http://127.0.0.1:49261/alerts", "", "/t")
    assert (resolved.what, auth.what) == (
        "receiver runbook: send_resolved is not true (incidents never resolve)",
        "receiver runbook: no authorization credentials_file (the token)",
    )
    assert auth.fix == (
        "add to receiver runbook's webhook, then reload Alertmanager:\n"
        "http_config:\n  authorization:\n    type: Bearer\n    credentials_file: /t\n"
    )
    unrouted = AM_CONFIG.replace("  - receiver: runbook\n", "  - receiver: team\n")
    [route] = wc.alertmanager_problems(unrouted, "http://127.0.0.1:49261/alerts")
    assert route.what == "no route sends alerts to receiver runbook"
    assert route.fix.endswith("\n- receiver: runbook\n  matchers: ['alertname=~\"GgenMcp.*\"']\n"
                              "  group_by: [alertname, instance]\n  continue: true           "
                              "# the routes after this one (yours) still see the alert\n")  # fmt: skip
    assert "receivers:" not in route.fix and "webhook_configs" not in route.fix
    [bad] = wc.alertmanager_problems("route: [", "x")
    assert bad.what.startswith("its configuration is not YAML")


def test_a_url_alertmanager_hides_is_not_held_against_the_wiring() -> None:
    hidden = AM_CONFIG.replace("url: http://127.0.0.1:49261/alerts", "url: <secret>")
    assert wc.alertmanager_problems(hidden, "http://127.0.0.1:49261/alerts") == []


WIRED = wc.Wiring("http://am:9093", "http://rb:8080", "t0ken", "", "/etc/runbook/webhook-token")


def test_the_receivers_answer_to_the_token_is_judged() -> None:
    assert wc.token_answer(422, WIRED).ok
    refused = wc.token_answer(401, WIRED)
    assert refused == Check(
        "receiver token", False, "refused (401)",
        "the receiver holds another token than /etc/runbook/webhook-token: restart `runbook "
        "serve` with --token-file naming the file Alertmanager's credentials_file names",
    )  # fmt: skip
    other = wc.token_answer(404, WIRED)
    assert not other.ok and other.detail == "POST http://rb:8080/alerts answered 404, not 422"


def test_the_wiring_comes_from_flags_then_settings(tmp_path: Path, monkeypatch) -> None:
    from runbook_lib.contract.config import Settings

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    monkeypatch.setenv("RUNBOOK_CONFIG", str(empty_config(tmp_path)))
    monkeypatch.setenv("RUNBOOK_WEBHOOK_TOKEN_FILE", str(token))
    monkeypatch.setenv("RUNBOOK_EXTERNAL_URL", "https://runbook.example/")
    monkeypatch.setenv("RUNBOOK_ALERTMANAGER_URL", "http://am:9093")
    w = wc.Wiring.from_settings(Settings())
    assert w == wc.Wiring("http://am:9093", "https://runbook.example", "s3cret", "", str(token),
                          "https://runbook.example")  # fmt: skip
    assert w.alerts_url == "https://runbook.example/alerts"
    given = wc.Wiring.from_settings(Settings(), "http://other:9093", "http://rb:1/alerts")
    assert (given.alertmanager_url, given.receiver) == ("http://other:9093", "http://rb:1")
    token.write_text("")
    empty = wc.Wiring.from_settings(Settings())
    assert empty.token == "" and empty.token_problem == f"the token file {token} is empty"
    check = wc.token_check(empty)
    assert not check.ok and check.fix.startswith("set RUNBOOK_WEBHOOK_TOKEN_FILE (or ")


def test_alertmanager_checks_are_skipped_when_none_is_configured() -> None:
    [check] = wc.alertmanager_checks(wc.Wiring("", "http://rb:8080", "t", "", ""))
    assert check.skipped and check.ok and check.name == "alertmanager"
    assert check.detail == (
        "not configured (--alertmanager-url, RUNBOOK_ALERTMANAGER_URL, alertmanager_url in "
        "runbook.toml)"
    )


def test_render_prints_the_fix_under_a_failure_and_skips_as_skip() -> None:
    report = doctor.Report(checks=[
        Check("prometheus", True, "http://p answers"),
        Check("rules", False, "0 of 23 alert rules", "add to prometheus.yml:\nrule_files:\n  - a"),
        wc.skip("alertmanager", "not configured"),
        Check("docker", False, "down", "start it"),
    ])  # fmt: skip
    assert doctor.render(report).splitlines() == [
        "ok   prometheus        http://p answers",
        "FAIL rules             0 of 23 alert rules",
        "     fix: add to prometheus.yml:",
        "       rule_files:",
        "         - a",
        "skip alertmanager      not configured",
        "warn docker            down",
        "     fix: start it",
        "metrics profile   none: Prometheus holds neither ggen_mcp_* nor mcp_* series",
    ]
    assert not report.ok
    assert doctor.Report(checks=[wc.skip("alertmanager", "x"), Check("docker", False, "")]).ok


class FakePrometheus:
    """FAKE: answers each API path with a canned JSON body (what a Prometheus that has not
    scraped GGEN MCP yet answers), so the run can be checked without starting one."""

    def __init__(self, answers: dict[str, dict]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = json.dumps(answers.get(self.path.split("?")[0], {})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def unscraped() -> Iterator[FakePrometheus]:
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    fake = FakePrometheus({
        "/api/v1/query": empty,
        "/api/v1/targets": targets(UNSCRAPED),
        "/api/v1/rules": rules_answer([]),
        "/api/v1/status/runtimeinfo": {"status": "success", "data": {"startTime": "x"}},
    })  # fmt: skip
    yield fake
    fake.server.shutdown()


def test_before_the_first_scrape_no_metric_is_called_missing(unscraped, tmp_path: Path) -> None:
    report = doctor.run(unscraped.url, tmp_path, docker_base_url="unix:///no/such.sock")
    assert report.waiting and report.missing_metrics == [] and report.blind_runbooks == []
    text = doctor.render(report)
    assert "FAIL first scrape      no scrape yet of http://127.0.0.1:40649/metrics" in text
    assert "wait ~1h (one scrape interval)" in text
    assert "missing metrics" not in text and "neither ggen_mcp_*" not in text
    assert not report.ok


def test_doctor_with_prometheus_unreachable_names_the_setting_and_exits_1(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "RUNBOOK_CONFIG": str(empty_config(tmp_path)),
           "RUNBOOK_OUTPUT_DIR": str(tmp_path / "out")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "doctor", "--prometheus-url",
         "http://127.0.0.1:1", "--receiver-url", "http://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "FAIL prometheus        http://127.0.0.1:1 does not answer",
        "     fix: give its address with --prometheus-url, RUNBOOK_PROMETHEUS_URL or "
        "prometheus_url in runbook.toml",
        "skip alertmanager      not configured (--alertmanager-url, RUNBOOK_ALERTMANAGER_URL, "
        "alertmanager_url in runbook.toml)",
        "FAIL webhook token     no webhook token is configured",
    ]
    assert (
        lines[5]
        == "FAIL receiver          http://127.0.0.1:1/health: [Errno 111] Connection refused"
    )


@pytest.mark.stack
def test_doctor_passes_on_the_wired_stack_and_names_the_fix_when_alerts_go_elsewhere(
    tmp_path: Path,
) -> None:
    from runbook_lib.lab import stack
    from tests.polling import wait_for

    info = stack.start(stack.StackOptions(state_dir=tmp_path / "stack", any_free_port=True,
                                          receiver=True, output_dir=tmp_path / "records"))  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "RUNBOOK_CONFIG": str(empty_config(tmp_path)),
           "RUNBOOK_OUTPUT_DIR": str(tmp_path / "records"),
           "RUNBOOK_EXTERNAL_URL": info.urls["runbook"],  # as the stack's receiver was started
           "RUNBOOK_PORT": info.urls["runbook"].rsplit(":", 1)[1],
           "RUNBOOK_WEBHOOK_TOKEN_FILE": info.token_file}  # fmt: skip
    argv = [sys.executable, "-m", "runbook_lib.cli", "doctor",
            "--prometheus-url", info.urls["prometheus"],
            "--alertmanager-url", info.urls["alertmanager"],
            "--receiver-url", info.urls["runbook"]]  # fmt: skip

    def doctor_says() -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)

    try:
        wait_for(lambda: "ok   first scrape" in doctor_says().stdout, 30, "the first scrape")
        wired = doctor_says()
        assert wired.returncode == 0, wired.stdout
        for name in ("prometheus", "rules", "first scrape", "alertmanager", "alert route",
                     "webhook token", "receiver", "receiver token"):  # fmt: skip
            assert f"ok   {name:<17} " in wired.stdout, name
        config = Path(info.state_dir) / "config" / "alertmanager.yml"
        elsewhere = "http://127.0.0.1:9/alerts"
        config.write_text(config.read_text().replace(f"{info.urls['runbook']}/alerts", elsewhere))
        httpx.post(f"{info.urls['alertmanager']}/-/reload", timeout=10).raise_for_status()
        moved = doctor_says()
        assert moved.returncode == 1
        assert (f"FAIL alert route       no webhook receiver sends to {info.urls['runbook']}"
                f"/alerts (its webhooks: {elsewhere})") in moved.stdout  # fmt: skip
        assert "     fix: add this route and receiver to alertmanager.yml, then reload it:" in (
            moved.stdout
        )
        assert f"             - url: {info.urls['runbook']}/alerts" in moved.stdout
        assert f"credentials_file: {info.token_file}" in moved.stdout
    finally:
        stack.stop(tmp_path / "stack")


def test_a_token_file_alertmanager_reads_here_must_hold_this_receivers_token(tmp_path) -> None:
    theirs = tmp_path / "am-token"
    url = "http://127.0.0.1:8080/alerts"
    config = wiring.alertmanager_snippet(url, theirs)
    theirs.write_text("old-token\n")
    [wrong] = wc.alertmanager_problems(config, url, "new-token", "/etc/runbook/webhook-token")
    assert wrong == wc.Problem(
        f"receiver runbook: its credentials_file {theirs} holds another token than this "
        "receiver's (alerts would get 401)",
        f"copy /etc/runbook/webhook-token over {theirs} (Alertmanager reads it at each send: "
        "no reload needed)",
    )
    theirs.write_text("new-token\n")
    assert wc.alertmanager_problems(config, url, "new-token") == []
    theirs.unlink()  # on Alertmanager's own machine: cannot tell, not held against it
    assert wc.alertmanager_problems(config, url, "new-token") == []


def test_docker_warns_but_does_not_fail_the_doctor() -> None:
    from runbook_lib.service.doctor import Check, Report, _check_lines

    report = Report()
    report.checks = [Check("docker", False, "engine does not answer")]
    assert report.ok and _check_lines(report.checks[0])[0].startswith("warn docker")
    report.checks.append(Check("receiver", False, "refused", "start it"))
    assert not report.ok and _check_lines(report.checks[1])[0].startswith("FAIL receiver")


def test_doctor_flags_a_port_the_external_url_contradicts(tmp_path: Path, monkeypatch) -> None:
    from runbook_lib.contract.config import Settings

    cfg = tmp_path / "runbook.toml"
    monkeypatch.setenv("RUNBOOK_CONFIG", str(cfg))
    cfg.write_text('external_url = "http://127.0.0.1:18777"\nport = 8080\n')
    wrong = wc.listen_check(Settings())
    assert wrong == Check(
        "listen address", False,
        "external_url http://127.0.0.1:18777 is port 18777 of this machine, but serve listens on "
        "127.0.0.1:8080",
        f"set port = 18777 in {cfg}, or external_url to the address of the proxy that forwards "
        "to port 8080",
    )  # fmt: skip
    cfg.write_text('external_url = "http://127.0.0.1:18777"\nport = 18777\n')
    assert wc.listen_check(Settings()).ok
    cfg.write_text('external_url = "https://runbook.example.org"\nport = 8080\n')
    assert wc.listen_check(Settings()).ok  # a proxy's port is the proxy's
