"""Logs in production: `runbook init --log-file/--log-container/--log-unit` writes where the
service's logs are; the settings hand them to every run (`notebook_params`, as `serve` and
`run` do, without `--param`), and a cause that needs logs goes from "cannot judge" to
judged. One test per kind of source, each real: rotated files (one compressed) found by a
glob, a Docker container found by its label, a journal (journald cannot run here, so
systemd-journal-remote writes a real journal file from an export, and the real journalctl
reads it through the same code path as the system journal)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook_lib.contract.config import Settings
from runbook_lib.diagnosis import Evidence, diagnose, investigate
from runbook_lib.diagnosis.resolution import commands
from runbook_lib.evidence.signals import Signals
from runbook_lib.notebook.parameters import Params
from runbook_lib.notebook.state import log_specs
from tests.conftest import docker_engine
from tests.polling import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
LINE = "Error: listen EADDRINUSE: address already in use :::9464"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> dict:
    """`runbook init` with `flags`, run for real; the notebook parameters its settings give."""
    cfg = tmp_path / "etc" / "runbook.toml"
    done = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "init", "--config", str(cfg), "--output",
         str(tmp_path / "records"), *flags],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RUNBOOK_CONFIG": str(cfg)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("RUNBOOK_CONFIG", str(cfg))
    return Settings().notebook_params()


def port_in_use(params: dict) -> tuple[str, list[str], list[str]]:
    """(verdict, evidence, missing) of service_down's port_in_use, the service seen down,
    with the logs the run's parameters name (as the notebook reads them)."""
    ev = Evidence(Signals(values={"up": 0.0, "up_min": 0.0}))
    end = datetime.now(UTC) + timedelta(seconds=5)  # a run now (lines are stamped from NOW)
    ev.logs, ev.logs_missing = investigate.read_logs(
        log_specs(Params(**params)), NOW - timedelta(minutes=15), end
    )
    [v] = [v for v in diagnose("service_down", ev) if v.cause == "port_in_use"]
    return v.verdict, v.evidence, v.missing


def test_without_a_source_the_cause_cannot_be_judged(tmp_path, monkeypatch) -> None:
    params = configured(tmp_path, monkeypatch)
    assert "log_file" not in params and "container" not in params
    verdict, _, missing = port_in_use(params)
    assert verdict == "unknown"
    assert any("no log source was given" in m for m in missing)


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def test_rotated_files_found_by_a_glob_are_read_together(tmp_path, monkeypatch) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "ggen-mcp.log").write_text(f"{stamp(1)} ERROR {LINE}\n{stamp(1)} INFO exiting\n")
    (logs / "ggen-mcp.log.1").write_text(f"{stamp(4)} ERROR {LINE}\n")
    with gzip.open(logs / "ggen-mcp.log.2.gz", "wt") as fh:
        fh.write(f"{stamp(9)} ERROR {LINE}\n{stamp(600)} ERROR {LINE}\n")  # one before the window
    (logs / "other.txt").write_text(f"{stamp(2)} ERROR {LINE}\n")  # not the glob's
    params = configured(tmp_path, monkeypatch, "--log-file", str(logs / "ggen-mcp.log*"))
    assert params["log_file"] == str(logs / "ggen-mcp.log*")
    verdict, evidence, _ = port_in_use(params)
    assert verdict == "likely"
    assert any("3 log lines" in e and "EADDRINUSE" in e for e in evidence), evidence
    first = commands(
        "service_down", "process_crashed", {"log_sources": log_specs(Params(**params))}
    )
    assert first.splitlines()[0] == "docker restart <CONTAINER>   # or: systemctl restart <UNIT>"
    invalid = commands(
        "high_error_rate", "invalid_input", {"log_sources": log_specs(Params(**params))}
    )
    assert invalid.splitlines()[0] == f"zcat -f {logs}/ggen-mcp.log* | grep -A5 'validation error'"


@pytest.mark.stack
def test_a_container_found_by_its_label(tmp_path, monkeypatch) -> None:
    from runbook_lib.lab import images

    dc = docker_engine()
    label = f"rbtest-logs={uuid.uuid4().hex[:8]}"
    image = images.busybox_image()
    c = dc.containers.run(image, ["sh", "-c", f"echo '{LINE}'; echo '{LINE}' >&2; sleep 120"],
                          detach=True, labels=dict([label.split("=")]))  # fmt: skip
    try:
        params = configured(tmp_path, monkeypatch, "--log-container", f"label:{label}")
        assert params["container"] == f"label:{label}"
        wait_for(lambda: len(c.logs().splitlines()) >= 2, 30, "the container's two lines")
        verdict, evidence, _ = port_in_use(params)
        assert verdict == "likely"
        assert any("2 log lines" in e and "EADDRINUSE" in e for e in evidence), evidence
        values = {"container": params["container"], "log_sources": log_specs(Params(**params))}
        assert commands("service_down", "process_crashed", values).splitlines()[0] == (
            f"docker restart $(docker ps -q --filter label={label} | head -n1)"
        )
    finally:
        c.remove(force=True)
        dc.close()


def test_a_journal_unit_read_by_journalctl(tmp_path, monkeypatch) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    usec = int((NOW - timedelta(minutes=2)).timestamp() * 1e6)
    export = "".join(
        f"__REALTIME_TIMESTAMP={usec + i}\n__MONOTONIC_TIMESTAMP={i + 1}\n"
        f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=ggen\n_SYSTEMD_UNIT={unit}\n"
        f"PRIORITY=3\nMESSAGE={LINE}\n\n"
        for i, unit in enumerate(["ggen-mcp.service", "ggen-mcp.service", "other.service"])
    )
    subprocess.run([JOURNAL_REMOTE, "-o", str(journal / "remote.journal"), "-"],
                   input=export, text=True, check=True, capture_output=True, timeout=60)  # fmt: skip
    params = configured(tmp_path, monkeypatch, "--log-unit", f"ggen-mcp.service@{journal}")
    assert params["log_unit"] == f"ggen-mcp.service@{journal}"
    assert log_specs(Params(**params)) == [f"journal:ggen-mcp.service@{journal}"]
    verdict, evidence, _ = port_in_use(params)
    assert verdict == "likely"
    assert any("2 log lines" in e and "EADDRINUSE" in e for e in evidence), evidence
    assert (
        commands(
            "service_down", "process_crashed", {"log_sources": log_specs(Params(**params))}
        ).split("\n")[0]
        == "systemctl restart ggen-mcp.service"
    )


def test_doctor_checks_the_sources_answer_with_recent_lines(tmp_path: Path) -> None:
    from runbook_lib.service import doctor

    fresh, stale = tmp_path / "fresh.log", tmp_path / "stale.log"
    fresh.write_text(f"{stamp(3)} INFO ok\n{stamp(2)} ERROR {LINE}\n")
    stale.write_text(f"{stamp(60 * 24 * 3)} INFO three days ago\n")
    ok = doctor.log_check([str(fresh)], NOW)
    assert ok.ok and ok.detail == (
        f"file:{fresh}: 2 lines in the last 24 h, newest {NOW - timedelta(minutes=2):%Y-%m-%d %H:%M} UTC"
    )
    old = doctor.log_check([str(stale)], NOW)
    assert not old.ok and not old.warn
    assert (
        old.detail == f"file:{stale}: no line in the last 24 h: is this where the service logs now?"
    )
    assert old.fix.startswith("name where the service logs in runbook.toml: log_file")
    gone = doctor.log_check([str(tmp_path / "gone.log")], NOW)
    assert not gone.ok and gone.detail == f"file:{tmp_path / 'gone.log'}: No such file or directory"
    none = doctor.log_check([], NOW)
    assert not none.ok and none.warn  # worth a line, but not a failed doctor
    assert doctor.Report(checks=[none]).ok and not doctor.Report(checks=[old]).ok
    assert doctor.render(doctor.Report(checks=[none])).startswith("warn log source ")
