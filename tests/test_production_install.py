"""The production path of the README, done for real from the wheel: a fresh venv outside
the checkout, `runbook init --external-url` with a port that is not the default, the rule
files it renders loaded by a real Prometheus and the route it prints loaded by a real
Alertmanager, `runbook serve` from the venv. GGEN MCP's target is down, so
GgenMcpServiceDown fires with the production rules' timings (`for: 1m`); Alertmanager
holds it with a runbook_url to this receiver, delivers it, and a real browser follows that
URL through the sign-in to the incident's record.

Stand-in: the fresh venv takes the third-party packages from this checkout's venv (a .pth
line after its own site-packages, and JUPYTER_PATH for their data files) instead of
downloading them, and the wheel is installed by this checkout's pip (the fresh venv has
none of its own); runbook_lib itself is the wheel's, as the test checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbook_lib.lab import pids, stack
from tests.polling import wait_for
from tests.test_package import wheel  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.stack, pytest.mark.waits]
FIRE_S = 240.0  # for: 1m at a 5 s evaluation, Alertmanager's 30 s group_wait, one run


@pytest.fixture
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:  # noqa: F811
    home = tmp_path_factory.mktemp("fresh") / "venv"
    # No pip of its own (ensurepip took 21 s of a loaded machine, the venv alone 1 s): this
    # venv's pip installs the wheel into it, for its Python (`--python`).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True,
                   timeout=120)  # fmt: skip
    py = home / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    (Path(site) / "zz-checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home


@pytest.fixture
def monitoring(tmp_path: Path) -> Iterator[dict]:
    """Prometheus and Alertmanager, to be configured by the test, with pids recorded."""
    state = tmp_path / "state"
    state.mkdir()
    ports = {name: stack.free_port() for name in ("prometheus", "alertmanager", "receiver")}
    yield {"state": state, "ports": ports}
    pids.stop_all(state / "pids")


def test_from_the_wheel_init_serve_and_the_delivered_link_leads_to_the_record(
    venv: Path, monitoring: dict, tmp_path: Path
) -> None:
    ports, state = monitoring["ports"], monitoring["state"]
    prom_url = f"http://127.0.0.1:{ports['prometheus']}"
    am_url = f"http://127.0.0.1:{ports['alertmanager']}"
    external = f"http://127.0.0.1:{ports['receiver']}"
    work = tmp_path / "elsewhere"  # not the checkout
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "RUNBOOK_CONFIG": str(tmp_path / "etc" / "runbook.toml"),
           # the stand-in's data files too: nbconvert's templates, ipykernel's kernel spec
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}  # fmt: skip

    def runbook(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "runbook"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import runbook_lib; print(runbook_lib.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv), where

    made = runbook("init", "--external-url", external, "--prometheus-url", prom_url,
                   "--alertmanager-url", am_url, "--output", str(tmp_path / "records"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"port = {ports['receiver']}\n" in (tmp_path / "etc" / "runbook.toml").read_text()
    rule_files = [line.strip()[2:] for line in made.stdout.splitlines()
                  if line.strip().startswith("- /") and line.strip().endswith(".yml")]  # fmt: skip
    assert [Path(f).name for f in rule_files] == ["alerts.yml", "recording.yml", "receiver.yml"]
    printed = "     route:\n" + made.stdout.split("     route:\n", 1)[1].split("\n\n", 1)[0]
    (tmp_path / "alertmanager.yml").write_text(textwrap.dedent(printed) + "\n")

    down = stack.free_port()  # GGEN MCP's target: nothing listens there
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [{"job_name": "ggen-mcp", "static_configs": [{"targets": [f"127.0.0.1:{down}"]}]}],
    }))  # fmt: skip
    stack._launch(state, "alertmanager", [
        stack._bin("prometheus-alertmanager"), f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
        "--cluster.listen-address="])  # fmt: skip
    stack._launch(state, "prometheus", [
        stack._bin("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{ports['prometheus']}"])  # fmt: skip
    stack._launch(
        state, "runbook", [str(venv / "bin" / "runbook"), "serve", "--workers", "1"], env=env
    )
    for name, url in (("alertmanager", f"{am_url}/-/ready"), ("prometheus", f"{prom_url}/-/ready"),
                      ("runbook", f"{external}/health")):  # fmt: skip
        stack._wait_ready(state, name, url, 60)

    doctor = runbook("doctor")
    assert f"ok   rule links        every runbook_url leads to {external}\n" in doctor.stdout
    assert "ok   alert route       " in doctor.stdout and "ok   rule version " in doctor.stdout

    def held() -> dict | None:
        alerts = httpx.get(f"{am_url}/api/v2/alerts", timeout=10).json()
        return next((a for a in alerts if a["labels"]["alertname"] == "GgenMcpServiceDown"), None)

    alert = wait_for(held, FIRE_S, "Alertmanager to hold GgenMcpServiceDown", 2)
    link = alert["annotations"]["runbook_url"]
    assert link == (f"{external}/incidents/latest?alertname=GgenMcpServiceDown&instance="
                    f"127.0.0.1%3A{down}")  # fmt: skip

    def recorded() -> list:
        done = runbook("incidents", "--json")
        rows = json.loads(done.stdout or "[]")
        return [
            r for r in rows if any(run["status"] in ("completed", "degraded") for run in r["runs"])
        ]

    [incident] = wait_for(recorded, FIRE_S, "the investigation's record", 2)
    viewer = (tmp_path / "records" / ".viewer-token").read_text().strip()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(link)
            assert "/signin" in page.url
            page.fill("input[name=token]", viewer)
            page.click("button[type=submit]")
            page.wait_for_url(f"{external}/incidents/{incident['id']}", timeout=30_000)
            text = page.inner_text("body")
            page.wait_for_load_state("load")
            record = "\n".join(f.locator("body").inner_text() for f in page.frames[1:])
        finally:
            browser.close()
    assert f"#{incident['id']} GgenMcpServiceDown" in text
    # the record, shown in it: its header line, then the answer
    assert "🚨 GgenMcpServiceDown · critical · firing since " in record
    assert "· runbook service_down\n" in record
    # then the answer, one of two: with GGEN MCP merely not listening and no logs, no cause is
    # likely; an OOM kill in the kernel log in the incident's window (another test's container
    # on this shared host may make one) makes "OOM killed" the top cause
    assert ("No cause is likely" in record) != ("Top cause" in record), record[:400]
