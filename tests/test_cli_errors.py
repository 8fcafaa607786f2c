"""An operator's mistake gets one line on stderr naming the problem and the fix, exit code
2, no traceback, and nothing created on the way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from socket import IPPROTO_TCP, TCP_NODELAY

import pytest

from runbook_lib import cli
from runbook_lib.cli import serving
from runbook_lib.contract.config import Settings
from tests.conftest import empty_config

TOKEN_VARS = ("RUNBOOK_WEBHOOK_TOKEN", "RUNBOOK_WEBHOOK_TOKEN_FILE")


@pytest.fixture(autouse=True)
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No runbook.toml, no token in the environment, records under tmp_path."""
    for var in TOKEN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(empty_config(tmp_path)))
    monkeypatch.setenv("RUNBOOK_OUTPUT_DIR", str(tmp_path / "default-out"))
    return empty_config(tmp_path)


def refused(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI; it must exit 2 with exactly one line on stderr. Returns that line."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_serve_without_a_token_says_where_to_put_one_and_creates_nothing(
    tmp_path: Path, capsys, no_config: Path
) -> None:
    out = tmp_path / "records"
    line = refused(capsys, ["serve", "--output", str(out)])
    assert line == (
        "runbook serve: no webhook token: give --token-file FILE, or set "
        f"RUNBOOK_WEBHOOK_TOKEN_FILE (or webhook_token_file in {no_config}); "
        "`runbook init` writes one"
    )
    assert not out.exists() and not (tmp_path / "default-out").exists()


def test_serve_with_a_missing_token_file_names_the_file_and_the_flag(tmp_path, capsys) -> None:
    out = tmp_path / "records"
    line = refused(capsys, ["serve", "--token-file", "/nonexistent", "--output", str(out)])
    assert line == (
        "runbook serve: cannot read the token file /nonexistent: No such file or directory "
        "(named by --token-file): put the token there, or `runbook init` writes one"
    )
    assert not out.exists()


def test_serve_names_the_variable_or_config_key_that_named_a_bad_token_file(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    monkeypatch.setenv("RUNBOOK_WEBHOOK_TOKEN_FILE", str(empty))
    line = refused(capsys, ["serve", "--output", str(tmp_path / "a")])
    assert line.startswith(f"runbook serve: the token file {empty} is empty ")
    assert "(named by RUNBOOK_WEBHOOK_TOKEN_FILE)" in line
    monkeypatch.delenv("RUNBOOK_WEBHOOK_TOKEN_FILE")
    config = tmp_path / "runbook.toml"
    config.write_text('webhook_token_file = "missing-token"\n')
    monkeypatch.setenv("RUNBOOK_CONFIG", str(config))
    line = refused(capsys, ["serve", "--output", str(tmp_path / "b")])
    assert f"cannot read the token file {tmp_path / 'missing-token'}" in line
    assert f"(named by webhook_token_file in {config})" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_token_comes_from_the_flag_before_the_environment(tmp_path, monkeypatch) -> None:
    given = tmp_path / "token"
    given.write_text("from-the-file\n")
    monkeypatch.setenv("RUNBOOK_WEBHOOK_TOKEN", "from-the-variable")
    assert serving._webhook_token(str(given), Settings()) == "from-the-file"
    assert serving._webhook_token(None, Settings()) == "from-the-variable"


def test_serve_without_a_token_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "RUNBOOK_CONFIG": str(empty_config(tmp_path))}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "serve", "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("runbook serve: no webhook token: give --token-file FILE")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("prometheus_url = [", "Invalid value"),
        (
            "promethues_url = 'http://p:9090'\n",
            "promethues_url: unknown key; did you mean prometheus_url?",
        ),
        ("port = 'eighty'\n", "port: Input should be a valid integer"),
    ],
)
def test_a_bad_config_file_is_named_for_any_command(
    tmp_path: Path, capsys, monkeypatch, text: str, problem: str
) -> None:
    config = tmp_path / "runbook.toml"
    config.write_text(text)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(config))
    for argv in (["list"], ["summary", str(tmp_path)], ["doctor"]):
        line = refused(capsys, argv)
        assert line.startswith(f"runbook: {config}: ") and problem in line


def test_summary_of_a_path_that_is_no_record(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nonexistent"
    assert refused(capsys, ["summary", str(missing)]) == (
        f"runbook summary: {missing} does not exist: give a record directory "
        "(`runbook incidents` lists them)"
    )
    (tmp_path / "notes.txt").write_text("x")
    assert refused(capsys, ["summary", str(tmp_path)]) == (
        f"runbook summary: {tmp_path} is not a record (no summary.json nor record.ipynb): "
        "give a record directory (`runbook incidents` lists them)"
    )
    (tmp_path / "summary.json").write_text("{not json")
    line = refused(capsys, ["summary", str(tmp_path)])
    assert line.startswith(f"runbook summary: cannot read the summary of {tmp_path}: ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "GgenMcpHighErrorRate", "--label", "x"],
         "runbook: --label 'x' is not KEY=VALUE: write --label KEY=VALUE"),
        (["run", "GgenMcpHighErrorRate", "--param", "=1"],
         "runbook: --param '=1' is not KEY=VALUE: write --param KEY=VALUE"),
        (["run", "GgenMcpHighErrorRate", "--at", "yesterday"],
         "runbook run: --at 'yesterday' is not an ISO 8601 time: write e.g. "
         "--at 2026-01-15T10:30:00Z"),
        (["run", "--from-record", "/nonexistent"],
         "runbook run: --from-record /nonexistent: no such record directory: give a record "
         "directory (`runbook incidents` lists them)"),
        (["run"], "runbook run: no alert: give ALERTNAME (`runbook list` names them), or "
         "--from-record RECORD"),
    ],
)  # fmt: skip
def test_run_refuses_bad_arguments_before_writing_anything(
    tmp_path: Path, capsys, argv: list[str], expected: str
) -> None:
    out = tmp_path / "records"
    assert refused(capsys, [*argv, "--output", str(out)]) == expected
    assert not out.exists()


def test_run_from_a_directory_without_saved_data(tmp_path: Path, capsys) -> None:
    line = refused(capsys, ["run", "--from-record", str(tmp_path), "--output", str(tmp_path / "o")])
    assert line == (
        f"runbook run: --from-record: {tmp_path} has no saved data (data/queries.jsonl) to "
        "replay: give a record directory (`runbook incidents` lists them)"
    )


def test_prune_and_postmortem_name_the_directory_and_the_flag(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nonexistent"
    assert refused(capsys, ["prune", "--days", "7", "--output", str(missing)]) == (
        f"runbook prune: no records directory {missing}: give --output DIR "
        "(or set RUNBOOK_OUTPUT_DIR, output_dir in runbook.toml)"
    )
    assert refused(capsys, ["prune", "--days", "0", "--output", str(tmp_path)]) == (
        "runbook prune: --days 0: give a positive number of days"
    )
    assert refused(capsys, ["postmortem", str(missing)]) == (
        f"runbook postmortem: {missing} is not a record directory: give an incident id or the "
        "incident's record directories (`runbook incidents` lists them)"
    )
    assert not missing.exists()


def test_notify_status_without_an_index_creates_none(tmp_path: Path, capsys) -> None:
    out = tmp_path / "records"
    assert cli.main(["notify", "status", "--output", str(out)]) == 0
    assert (
        capsys.readouterr().err == f"no notifications yet: {out / 'index.sqlite'} does not exist\n"
    )
    assert not out.exists()


def test_serve_with_a_missing_notify_config_creates_nothing(tmp_path: Path, capsys) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    out = tmp_path / "records"
    argv = ["serve", "--token-file", str(token), "--output", str(out)]
    line = refused(capsys, [*argv, "--notify-config", str(tmp_path / "notify.yml")])
    assert line == (
        f"runbook serve: no notification config at {tmp_path / 'notify.yml'}: fix "
        "--notify-config (RUNBOOK_NOTIFY_CONFIG, notify_config in runbook.toml) or leave it unset"
    )
    line = refused(capsys, [*argv, "--database", "sqlite:///x.sqlite", "--broker", ""])
    assert line.startswith("runbook serve: distributed mode needs both --database and --broker")
    assert not out.exists()


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_broker_url_celery_cannot_use_is_named_before_anything_starts(
    command: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    argv = [command, "--database", "sqlite:///x.sqlite", "--broker", "x://", "--output", str(out)]
    if command == "serve":
        argv += ["--token-file", str(tmp_path / "t")]
        (tmp_path / "t").write_text("secret\n")
    line = refused(capsys, argv)
    assert line == (
        f"runbook {command}: --broker 'x://' is not a broker URL: write e.g. redis://HOST:6379/0 "
        "(RUNBOOK_BROKER_URL, broker_url in runbook.toml)"
    )
    assert not out.exists()


def test_the_served_socket_turns_nagle_off_on_each_connection() -> None:
    """uvicorn serves on `_bind`'s socket, and asyncio sets TCP_NODELAY on an accepted
    connection only when the listening socket says it is TCP. Without it every answer on a
    kept-alive connection (Alertmanager's, a browser's) waited for the client's delayed ACK:
    GET /health and POST /alerts took 43-48 ms a request (0.7-2.6 ms with it)."""
    sock = serving._bind("runbook serve", "127.0.0.1", 0)
    seen: list[int] = []

    async def main() -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(IPPROTO_TCP, TCP_NODELAY))
            writer.close()

        async with await asyncio.start_server(accepted, sock=sock):
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen == [1], seen
