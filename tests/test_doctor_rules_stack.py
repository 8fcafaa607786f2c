"""`runbook doctor` against a real Prometheus: the rule files as the package ships them
(every runbook_url to 127.0.0.1:8080, no version) fail both the links and the version
check with the `runbook rules render` fix; the files `runbook rules render` writes for this
installation, loaded by the same Prometheus, pass both."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbook_lib.contract.settings import RULES
from runbook_lib.lab import pids, stack

pytestmark = pytest.mark.stack

EXTERNAL = "http://127.0.0.1:18777"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Prometheus loading whatever lies in tmp_path/loaded/*.yml; reloadable."""
    state, loaded = tmp_path / "state", tmp_path / "loaded"
    state.mkdir()
    loaded.mkdir()
    port = stack.free_port()
    (tmp_path / "prometheus.yml").write_text(
        f"global: {{evaluation_interval: 1s}}\nrule_files: ['{loaded}/*.yml']\n"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        stack._launch(state, "prometheus", [
            stack._bin("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle"])  # fmt: skip
        stack._wait_ready(state, "prometheus", f"{url}/-/ready", 60)
        yield url, loaded
    finally:
        pids.stop_all(state / "pids")


def runbook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # only the config init wrote: a RUNBOOK_* variable of this session would win over it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env["RUNBOOK_CONFIG"] = str(tmp_path / "etc" / "runbook.toml")
    return subprocess.run([sys.executable, "-m", "runbook_lib.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def load(prometheus: str, loaded: Path, files: list[Path]) -> None:
    for old in loaded.glob("*.yml"):
        old.unlink()
    for f in files:
        (loaded / f.name).write_text(f.read_text())
    httpx.post(f"{prometheus}/-/reload", timeout=30).raise_for_status()


def test_doctor_names_stale_rules_and_passes_the_rendered_ones(prometheus, tmp_path) -> None:
    url, loaded = prometheus
    made = runbook(tmp_path, "init", "--external-url", EXTERNAL, "--prometheus-url", url,
                   "--output", str(tmp_path / "records"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    rendered = tmp_path / "etc" / "rules"

    load(url, loaded, [RULES / "alerts.yml", RULES / "recording.yml", RULES / "receiver.yml"])
    said = runbook(tmp_path, "doctor").stdout
    assert "ok   rules             25 of 25 alert rules, 24 of 24 recording rules loaded" in said
    assert (f"FAIL rule links        23 of 23 alerts link to http://127.0.0.1:8080, not to this "
            f"receiver ({EXTERNAL})\n     fix: `runbook rules render` writes them for {EXTERNAL} "
            f"(external_url in runbook.toml) into {rendered}; then reload Prometheus") in said  # fmt: skip
    assert ("FAIL rule version      alerts.yml was not rendered by `runbook rules render`; "
            "recording.yml was not rendered by `runbook rules render`; receiver.yml was not "
            "rendered by `runbook rules render`") in said  # fmt: skip

    load(url, loaded, sorted(rendered.glob("*.yml")))
    said = runbook(tmp_path, "doctor").stdout
    assert f"ok   rule links        every runbook_url leads to {EXTERNAL}\n" in said
    assert "ok   rule version      rendered by this package (" in said

    # an upgrade whose alerts changed: the loaded file is of another version than the package
    old = (rendered / "alerts.yml").read_text()
    [line] = [x for x in old.splitlines() if "version:" in x]
    (rendered / "alerts.yml").write_text(old.replace(line, "      version: 0.0.1+000000000000"))
    load(url, loaded, sorted(rendered.glob("*.yml")))
    said = runbook(tmp_path, "doctor").stdout
    assert (
        "FAIL rule version      alerts.yml was rendered by 0.0.1+000000000000, this package is "
        in said
    )
    rerendered = runbook(tmp_path, "rules", "render")
    assert (
        rerendered.returncode == 0 and f"wrote     {rendered / 'alerts.yml'}" in rerendered.stdout
    )
    assert f"unchanged {rendered / 'recording.yml'}" in rerendered.stdout
    load(url, loaded, sorted(rendered.glob("*.yml")))
    assert "ok   rule version " in runbook(tmp_path, "doctor").stdout
