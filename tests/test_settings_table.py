"""The settings table (contract/settings.py) is the one place a setting is defined: every
command's flag takes its default from it, the generated doc is the committed one, old flag
names still work with a note, and a variable or file key reaches the flag's default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from runbook_lib.cli import build_parser, flags, main
from runbook_lib.contract import settings
from runbook_lib.contract.config import FileConfig, Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def commands(parser: argparse.ArgumentParser, path: str = "runbook"):
    """Every (command, parser) pair, e.g. ("notify test", <parser>)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, name if path == "runbook" else f"{path} {name}")


def test_the_committed_settings_doc_is_the_tables() -> None:
    assert DOC.read_text() == settings.markdown(), "run `make settings-doc`"


def test_no_command_defines_a_default_of_its_own() -> None:
    """An option of the table has the table's default; any other option is a switch or a
    value with no default (None, False, empty)."""
    given = Settings()
    seen = 0
    for command, parser in commands(build_parser()):
        by_flag = {f: s for s in settings.for_command(command) for f in (s.option, *s.aliases)}
        for action in parser._actions:
            if not action.option_strings or action.default == argparse.SUPPRESS:
                continue
            s = by_flag.get(action.option_strings[0])
            if s is None:
                assert action.default in (None, False, [], ""), (command, action.option_strings)
            else:
                seen += 1
                assert action.dest == s.name
                assert action.default == flags.default(s, command, given), (command, s.name)
    assert seen == sum(len(s.commands) for s in settings.TABLE)  # each one registered


def test_every_setting_is_documented_with_its_names() -> None:
    sections = {part.split("\n", 1)[0]: part for part in DOC.read_text().split("\n## ")[1:]}
    assert list(sections) == [s.name for s in settings.TABLE]
    for s in settings.TABLE:
        text = sections[s.name]
        assert s.help and s.help[1:] in text, s.name
        assert (f"`RUNBOOK_{s.name.upper()}`" in text) == s.env
        assert (f"`{s.name}` in runbook.toml" in text) == s.file
        for command, old in s.deprecated:
            assert f"`{command} {old}` *(old)*" in text
    assert (
        "`--cell-timeout` of serve, worker, run; `run --timeout` *(old)*"
        in sections["cell_timeout"]
    )


def test_the_file_takes_exactly_the_tables_file_keys() -> None:
    keys = set(FileConfig.model_fields)
    assert {"metrics_profile", "state_dir", "deploy_dir", "cell_timeout"} <= keys
    assert "webhook_token" not in keys and "viewer_token" not in keys  # secrets: variables only
    assert "limit" not in keys  # a flag of one command, no setting


def test_a_variable_and_a_file_key_become_the_flags_default(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "runbook.toml"
    cfg.write_text("cell_timeout = 42\nworkers = 3\n")
    monkeypatch.setenv("RUNBOOK_CONFIG", str(cfg))
    monkeypatch.setenv("RUNBOOK_RUN_TIMEOUT", "1234")
    serve = build_parser().parse_args(["serve"])
    assert (serve.cell_timeout, serve.workers, serve.run_timeout) == (42.0, 3, 1234.0)
    run = build_parser().parse_args(["run", "X"])
    assert run.cell_timeout == 42.0  # the same setting under the same name for `run`
    assert build_parser().parse_args(["serve", "--cell-timeout", "7"]).cell_timeout == 7.0


@pytest.mark.parametrize(
    ("argv", "dest", "value", "note"),
    [
        (["run", "X", "--timeout", "5"], "cell_timeout", 5.0, "--timeout is deprecated; use --cell-timeout"),
        (["notify", "test", "--config", "n.yml"], "notify_config", "n.yml", "--config is deprecated; use --notify-config"),
        (["worker", "--database", "d", "--broker", "b", "--concurrency", "4"], "workers", 4, "--concurrency is deprecated; use --workers"),
        (["sim", "run", "--profile", "server"], "metrics_profile", "server", "--profile is deprecated; use --metrics-profile"),
    ],
)  # fmt: skip
def test_an_old_flag_name_works_and_says_the_new_one(argv, dest, value, note, capsys) -> None:
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"runbook: {note}\n"
    new = build_parser().parse_args([note.rsplit(" ", 1)[1] if a == argv[-2] else a for a in argv])
    assert getattr(new, dest) == value and capsys.readouterr().err == ""


def test_the_old_names_are_not_offered_in_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--cell-timeout" in out and "--timeout" not in out


def test_serves_flags_reach_its_runs(tmp_path) -> None:
    """What `runbook serve` runs with: each flag, else the setting, in the run's config."""
    from runbook_lib.cli import serving

    argv = ["serve", "--output", str(tmp_path), "--cell-timeout", "7", "--hold-cap", "100",
            "--workers", "3", "--prometheus-url", "http://p:9090"]  # fmt: skip
    args = build_parser().parse_args(argv)
    given = flags.given(args, "serve")
    run = serving._run_config(args, given)
    assert (run.cell_timeout, run.run_timeout, run.workers) == (7.0, 900.0, 3)
    assert (run.hold.cap_s, run.hold.margin_s, run.hold.fallback_s) == (100.0, 45.0, 10.0)
    assert (run.output_dir, run.prometheus_url) == (tmp_path, "http://p:9090")
    assert given.prometheus_url == "http://p:9090" and given.output_dir == tmp_path
