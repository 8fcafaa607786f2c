"""service/logs.py: one format for every line of the service, its own parts' and the
notifier's alike; and a log format the operator mistyped is named before anything starts."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_lib import cli
from runbook_lib.contract.request import IncidentContext, LeadAlert, QueueState, RunRequest
from runbook_lib.incidents.jobs import Queued
from runbook_lib.service import logs
from tests.conftest import empty_config, summary_of


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The service's log set up into a string; the process's logging as it was afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("runbook").level
    out = io.StringIO()
    yield out
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("runbook").setLevel(saved[2])
    logging.captureWarnings(False)


def job() -> RunRequest:
    return RunRequest(
        run_id=7, kind="verification", record="20261201T213000Z-GgenMcpHighErrorRate-ab12",
        runbook="high_error_rate", incident=IncidentContext(id=3),
        alert=LeadAlert(name="GgenMcpHighErrorRate", fingerprint="ab12",
                        starts_at="2026-12-01T21:30:00Z"),
        queue=QueueState(attempts=1, waited_s=1.25),
    )  # fmt: skip


def test_json_lines_carry_the_notifiers_fields_and_only_the_libraries_warnings(stream) -> None:
    logs.configure("json", stream)
    logging.getLogger("runbook.notify").info(
        "delivery to team-chat given up: %s", "HTTP 404",
        extra={"event": "delivery", "target": "team-chat", "outcome": "given_up"},
    )  # fmt: skip
    logging.getLogger("papermill").info("Executing notebook")  # a library's chatter
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    first, second, *more = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert more == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.pop("ts"))
    assert first == {"level": "INFO", "logger": "runbook.notify",
                     "msg": "delivery to team-chat given up: HTTP 404", "event": "delivery",
                     "target": "team-chat", "outcome": "given_up"}  # fmt: skip
    assert (second["level"], second["logger"]) == ("WARNING", "uvicorn.error")


def test_text_lines_are_one_line_each_and_configuring_again_doubles_none(stream) -> None:
    logs.configure("text", io.StringIO())
    logs.configure("text", stream)  # e.g. a worker process set up like its server
    logs.run_finished(
        job(), summary_of({"status": "failed", "error": "kernel died\nwith signal 9"}), 12.34
    )
    logs.run_queued(
        Queued(8, "verification", 1_796_160_600.0 + 300, 3, "GgenMcpHighErrorRate", "r", ""),
        now=1_796_160_600.0,
    )
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "WARNING runbook.runs run 7 finished: failed in 12.3 s (kernel died\\nwith signal 9), "
        "record 20261201T213000Z-GgenMcpHighErrorRate-ab12",
        "INFO runbook.runs run 8 queued: verification of incident #3 (GgenMcpHighErrorRate), "
        "due in 300 s",
    ]


def test_a_run_held_and_started_says_why_and_how_long_it_waited(stream) -> None:
    logs.configure("json", stream)
    logs.run_held(job(), 1_796_160_645.0, "waited for GgenMcpHighErrorRate (critical)")
    logs.run_started(job())
    held, started = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert held["msg"] == (
        "run 7 held until 2026-12-01T21:30:45Z: waited for GgenMcpHighErrorRate (critical)"
    )
    assert (held["outcome"], held["until"], held["incident_id"]) == (
        "held", "2026-12-01T21:30:45Z", 3)  # fmt: skip
    assert started["msg"] == (
        "run 7 started: verification of incident #3 (GgenMcpHighErrorRate, runbook "
        "high_error_rate), attempt 1, 1.2 s in the queue"
    )
    assert (started["outcome"], started["queued_s"], started["record"]) == (
        "started", 1.25, "20261201T213000Z-GgenMcpHighErrorRate-ab12")  # fmt: skip


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unknown_log_format_is_named_with_where_it_came_from(
    command: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CONFIG", str(empty_config(tmp_path)))
    monkeypatch.setenv("RUNBOOK_LOG_FORMAT", "xml")
    (tmp_path / "t").write_text("secret\n")
    out = tmp_path / "out"
    where = {
        "serve": ["--token-file", str(tmp_path / "t")],
        "worker": ["--database", "postgresql://x/y", "--broker", "redis://127.0.0.1:1/0"],
    }
    assert cli.main([command, "--output", str(out), *where[command]]) == 2
    assert capsys.readouterr().err == (
        f"runbook {command}: --log-format 'xml' (RUNBOOK_LOG_FORMAT, log_format in runbook.toml): "
        "give one of text, json\n"
    )
    assert not out.exists()


def test_log_format_in_the_config_file_is_checked_and_read(tmp_path: Path, monkeypatch) -> None:
    from runbook_lib.contract.config import ConfigError, Settings

    cfg = tmp_path / "runbook.toml"
    monkeypatch.setenv("RUNBOOK_CONFIG", str(cfg))
    monkeypatch.delenv("RUNBOOK_LOG_FORMAT", raising=False)
    cfg.write_text('log_format = "json"\n')
    assert Settings().log_format == "json"
    cfg.write_text('log_format = "xml"\n')
    with pytest.raises(ConfigError, match=r"runbook.toml: log_format: Input should be 'text' or"):
        Settings()
