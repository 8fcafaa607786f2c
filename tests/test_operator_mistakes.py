"""Every operator mistake of a production set-up, made with the real `runbook` command in a
process of its own: one line on stderr that names the fix, exit code 2, no traceback, and
nothing created (the directories and files the command would have made are not there)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import empty_config


def runbook(tmp_path: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNBOOK_CONFIG": str(config or empty_config(tmp_path / "cfg")),
           "RUNBOOK_OUTPUT_DIR": str(tmp_path / "default-out"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg")}  # fmt: skip
    for var in ("RUNBOOK_WEBHOOK_TOKEN", "RUNBOOK_WEBHOOK_TOKEN_FILE", "RUNBOOK_EXTERNAL_URL"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "runbook_lib.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""  # no start banner before the refusal
    return lines[0]


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    return path


def test_serve_under_a_file_names_the_file_and_creates_nothing(tmp_path: Path, token) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    line = one_line(runbook(tmp_path, "serve", "--token-file", str(token), "--port", "0",
                            "--output", str(afile / "records")))  # fmt: skip
    assert line == (
        f"runbook serve: output directory: {afile / 'records'} lies under {afile}, which is a "
        "file, not a directory; give a directory this user may write with --output "
        "(RUNBOOK_OUTPUT_DIR, output_dir in runbook.toml)"
    )
    assert afile.read_text() == "not a directory\n"


def test_serve_where_the_file_system_refuses_leaves_no_directory_behind(tmp_path, token) -> None:
    """As root, access(2) allows /sys; mkdir does not. Nothing of the path is left."""
    target = Path("/sys/kernel/runbook-test/records")
    line = one_line(runbook(tmp_path, "serve", "--token-file", str(token), "--port", "0",
                            "--output", str(target)))  # fmt: skip
    assert line.startswith("runbook serve: output directory: ")
    assert "/sys/kernel/runbook-test" in line and line.endswith(
        "; give a directory this user may write with --output (RUNBOOK_OUTPUT_DIR, output_dir in "
        "runbook.toml)"
    )
    assert not Path("/sys/kernel/runbook-test").exists()


def test_serve_on_a_port_in_use_says_which_flag_and_creates_nothing(tmp_path, token) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = tmp_path / "records"
        line = one_line(runbook(tmp_path, "serve", "--token-file", str(token), "--port", str(port),
                                "--output", str(out)))  # fmt: skip
    assert line.startswith(f"runbook serve: 127.0.0.1:{port} is in use")
    assert line.endswith("stop it, or give another port with --port (port in runbook.toml; keep "
                         "external_url's port the same)")  # fmt: skip
    assert f"(by pid {os.getpid()}, " in line  # the holder, named
    assert not out.exists() and not (tmp_path / "default-out").exists()


def test_a_config_file_that_does_not_exist_is_an_error_for_every_command_but_init(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope.toml"
    for args in (["doctor"], ["list"], ["incidents"], ["rules", "render"]):
        line = one_line(runbook(tmp_path, *args, config=missing))
        assert line == (
            f"runbook: {missing} does not exist: fix --config or RUNBOOK_CONFIG, or write it "
            f"with `runbook init --config {missing}`"
        )
    assert list(tmp_path.iterdir()) == []  # nothing made
    made = runbook(tmp_path, "init", "--output", str(tmp_path / "records"), config=missing)
    assert made.returncode == 0 and missing.exists()


def test_a_config_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    line = one_line(runbook(tmp_path, "doctor", config=folder))
    assert line == (
        f"runbook: {folder} is a directory, not a runbook.toml: name the file itself "
        "(--config FILE, RUNBOOK_CONFIG)"
    )
    line = one_line(runbook(tmp_path, "init", "--config", str(folder)))
    assert line == (
        f"runbook init: --config {folder} is a directory: name the file, e.g. --config "
        f"{folder / 'runbook.toml'}"
    )
    assert list(folder.iterdir()) == []


def test_a_misspelled_key_gets_the_key_it_meant(tmp_path: Path) -> None:
    cfg = tmp_path / "runbook.toml"
    cfg.write_text('external_ur = "http://x:1"\n')
    assert one_line(runbook(tmp_path, "doctor", config=cfg)) == (
        f"runbook: {cfg}: external_ur: unknown key; did you mean external_url?"
    )


def test_init_refuses_a_port_the_external_url_contradicts_and_writes_nothing(tmp_path) -> None:
    cfg = tmp_path / "etc" / "runbook.toml"
    line = one_line(runbook(tmp_path, "init", "--config", str(cfg), "--output", str(tmp_path / "r"),
                            "--external-url", "http://127.0.0.1:18777", "--port", "8080"))  # fmt: skip
    assert line == (
        "runbook init: --port 8080 contradicts --external-url http://127.0.0.1:18777 (port 18777 "
        "on this machine): drop --port, or give the proxy's URL as --external-url when one "
        "forwards to that port"
    )
    assert not (tmp_path / "etc").exists() and not (tmp_path / "r").exists()


def test_init_takes_its_port_from_a_local_external_url(tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "runbook.toml"
    done = runbook(tmp_path, "init", "--config", str(cfg), "--output", str(tmp_path / "r"),
                   "--external-url", "http://127.0.0.1:18777")  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = cfg.read_text()
    assert 'host = "127.0.0.1"\nport = 18777\n' in text
    assert "`runbook serve` will listen on 127.0.0.1:18777" in done.stdout
    alerts = (tmp_path / "etc" / "rules" / "alerts.yml").read_text()
    assert "http://127.0.0.1:8080" not in alerts
    assert alerts.count("runbook_url: http://127.0.0.1:18777/incidents/latest?alertname=") == 23


def test_init_into_an_unwritable_or_file_blocked_place_writes_nothing(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    cfg = tmp_path / "etc" / "runbook.toml"
    line = one_line(runbook(tmp_path, "init", "--config", str(cfg), "--output", str(afile / "r")))
    assert line == (
        f"runbook init: cannot write {afile / 'r'}: {afile / 'r'} lies under {afile}, which is a "
        "file, not a directory; choose another place with --output DIR"
    )
    assert not (tmp_path / "etc").exists()
    line = one_line(runbook(tmp_path, "init", "--config", "/sys/kernel/rb-test/runbook.toml",
                            "--output", str(tmp_path / "r")))  # fmt: skip
    assert line.startswith("runbook init: cannot write ") and "/sys/kernel/rb-test" in line
    assert line.endswith("; choose another place with --config PATH and --output DIR")
    assert not (tmp_path / "r").exists() and not Path("/sys/kernel/rb-test").exists()


def test_a_fingerprint_prefix_too_short_for_message_says_how_long(tmp_path: Path) -> None:
    from runbook_lib.incidents.index import Index
    from tests.test_incidents import alert

    Index(tmp_path / "out" / "index.sqlite").accept([alert()], verify_delay=300)
    line = one_line(runbook(tmp_path, "incidents", "--output", str(tmp_path / "out"),
                            "--message", "abc"))  # fmt: skip
    assert line == (
        "runbook incidents: 'abc' is neither an incident id nor 6 or more characters of an "
        "alert's fingerprint: give the id (12 or #12) or more of the fingerprint; `runbook "
        "incidents` lists them"
    )


def test_init_that_fails_midway_removes_what_it_made(tmp_path: Path) -> None:
    """access(2) lets root past /sys, mkdir does not: the config's directories, made first,
    go again, parents included."""
    cfg = tmp_path / "deep" / "etc" / "runbook" / "runbook.toml"
    line = one_line(runbook(tmp_path, "init", "--config", str(cfg), "--output",
                            "/sys/kernel/rb-test3/records"))  # fmt: skip
    assert line.startswith("runbook init: cannot write ") and "rb-test3" in line
    assert not (tmp_path / "deep").exists() and not Path("/sys/kernel/rb-test3").exists()
