"""notify.yml read again while the receiver runs: when the file appears, changes, breaks or
goes, and when asked (SIGHUP); what changed is said in one line, a broken file keeps the
configuration loaded before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runbook_lib.lab.stack import free_port
from runbook_lib.service.notify_config import Watched
from tests.polling import wait_for

ONE = "targets:\n  - name: hook\n    url: json://127.0.0.1:9/a\n"
TWO = ONE + "  - name: mail\n    url: mailto://u:p@example.org\n"


def test_the_file_is_read_again_when_it_appears_changes_breaks_or_goes(tmp_path: Path) -> None:
    path = tmp_path / "notify.yml"
    watch = Watched(path, None, "http://rb:18777")
    assert watch.poll() is None and watch.config.targets == []
    path.write_text(ONE)
    assert watch.poll() == f"{path} read again: targets hook (added hook)"
    assert watch.config.base_url == "http://rb:18777"  # the receiver's, as the file names none
    assert watch.poll() is None  # unchanged: not read
    path.write_text(TWO)
    assert watch.poll() == f"{path} read again: targets hook, mail (added mail)"
    path.write_text("targets: [{name: broken}]\n")
    said = watch.poll()
    assert said.startswith(f"{path}: targets.0") and said.endswith(
        "; kept the configuration loaded before"
    )
    assert [t.name for t in watch.config.targets] == ["hook", "mail"]
    path.unlink()
    assert watch.poll() == f"{path} is gone: notifications off: targets none (removed hook, mail)"
    path.write_text(ONE)
    watch.poll()
    watch.request()  # SIGHUP: read even though nothing changed
    assert watch.poll() == f"{path} read again: targets hook (no change)"


def test_sighup_reads_notify_yml_and_names_the_changed_settings(tmp_path: Path) -> None:
    """The real `runbook serve`, signalled: its log says what SIGHUP read."""
    cfg = tmp_path / "runbook.toml"
    cfg.write_text("retention_days = 7\n")
    token = tmp_path / "token"
    token.write_text("t\n")
    out = tmp_path / "out"
    port = free_port()
    env = {**os.environ, "RUNBOOK_CONFIG": str(cfg)}
    log = tmp_path / "serve.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "runbook_lib.cli", "serve", "--no-workers",
                                 "--port", str(port), "--token-file", str(token), "--output",
                                 str(out)], env=env, stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: "notifications off until" in log.read_text(), 60, "serve to start")
        (out / "notify.yml").write_text(ONE)
        wait_for(
            lambda: "read again: targets hook (added hook)" in log.read_text(),
            30,
            "the new file read",
        )
        cfg.write_text("retention_days = 30\n")
        time.sleep(0.01)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP:" in log.read_text(), 30, "the SIGHUP line")
        text = log.read_text()
        assert (f"SIGHUP: {cfg} changed: retention_days 7.0 -> 30.0; restart `runbook serve` for "
                "them to apply (notify.yml applies at once)") in text  # fmt: skip
        wait_for(lambda: "read again: targets hook (no change)" in log.read_text(), 30, "re-read")
        assert proc.poll() is None  # SIGHUP does not stop it
    finally:
        proc.terminate()
        proc.wait(30)
