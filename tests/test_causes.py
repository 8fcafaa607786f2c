"""One `Cause` per cause id: its rules, its resolution commands, its guarded mitigation."""

from __future__ import annotations

import re

import pytest

from runbook_lib.diagnosis import engine
from runbook_lib.diagnosis.engine import CAUSES
from runbook_lib.diagnosis.mitigation import ACTIONS
from runbook_lib.diagnosis.model import NO_COMMANDS, Cause
from runbook_lib.diagnosis.resolution import commands
from runbook_lib.notebook.wording import cause_name
from tests.listed_causes import by_runbook, differences, read


def test_every_listed_cause_is_one_cause_object_with_commands() -> None:
    listed = by_runbook(read())
    for cause in CAUSES.values():
        assert isinstance(cause, Cause)
        runbooks = {rb for rb, causes in listed.items() if cause.id in causes}
        assert set(cause.rules) == runbooks, (
            f"{cause.id}: judged in {set(cause.rules)}, listed in {runbooks}"
        )
        assert cause.commands != NO_COMMANDS and cause.commands.strip(), cause.id


def test_shared_causes_keep_one_object_with_a_rule_per_runbook() -> None:
    orphaned = CAUSES["orphaned_processes"]
    assert set(orphaned.rules) == {"libreoffice_leak", "fork_leak"}
    assert orphaned.rules["libreoffice_leak"] is not orphaned.rules["fork_leak"]


def test_each_cause_is_named_and_mitigated_as_listed() -> None:
    wrong = []
    for row in read():
        cause = CAUSES.get(row.cause)
        if cause is None:
            continue  # test_diagnosis names a listed cause no rule judges
        if cause_name(row.cause) != row.name:
            wrong.append(
                f"{row.cause} is shown as {cause_name(row.cause)!r}, listed as {row.name!r}"
            )
        if cause.mitigation != row.mitigation:
            wrong.append(f"{row.cause} offers {cause.mitigation}, listed {row.mitigation}")
    assert not wrong, "\n".join(wrong)
    assert {c.mitigation for c in CAUSES.values() if c.mitigation} <= set(ACTIONS)


def test_each_notebook_mitigation_belongs_to_a_cause_of_its_runbook() -> None:
    from runbook_lib.contract.settings import NOTEBOOKS

    listed, found = by_runbook(read()), 0
    for path in NOTEBOOKS.glob("*.ipynb"):
        offered = {CAUSES[c].mitigation for c in listed.get(path.stem, ())}
        for action in re.findall(r'run\.mitigate\(\\"(\w+)\\"\)', path.read_text()):
            assert action in offered, (path.stem, action)
            found += 1
    assert found == 6  # service_down, memory, libreoffice_leak, fork_leak, fd_leak, disk_usage


def test_commands_come_from_the_cause_with_values_quoted() -> None:
    text = commands("disk_usage", "temp_files_not_cleaned", {"temp_dir": "/tmp/x y"})
    assert text == (
        "find '/tmp/x y' -name 'ggen-mcp-*' -mtime +1\n"
        "find '/tmp/x y' -name 'ggen-mcp-*' -mtime +1 -delete"
    )
    assert commands("x", "no_such_cause", {}) == NO_COMMANDS


def test_a_cause_registered_twice_with_other_commands_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(engine, "CAUSES", {})
    monkeypatch.setattr(engine, "RULES", {})
    engine.rule("a", "c", commands="echo 1")(lambda ev: [])
    engine.rule("b", "c", commands="echo 1")(lambda ev: [])
    assert set(engine.CAUSES["c"].rules) == {"a", "b"}
    with pytest.raises(ValueError, match="cause 'c' registered twice"):
        engine.rule("d", "c", commands="echo 2")(lambda ev: [])


def test_the_list_and_the_registry_disagreeing_names_each_cause(tmp_path) -> None:
    table = tmp_path / "causes.md"
    table.write_text(
        "# causes\n\n| runbook | cause | shown as | guarded mitigation | on the server profile |\n"
        "|---|---|---|---|---|\n"
        "| `fd_leak` | `fd_leak` | File descriptor leak | `restart_container` | unknown: no fds |\n"
        "| `fd_leak` | `sockets_held` | Sockets held | - | decided |\n\nAfter the table.\n"
    )
    rows = read(table)
    assert [(r.cause, r.mitigation, r.server_decides) for r in rows] == [
        ("fd_leak", "restart_container", False),
        ("sockets_held", None, True),
    ]
    judged = {"fd_leak": {"fd_leak", "fd_limit_too_low"}, "memory": {"memory_leak"}}
    assert differences(by_runbook(rows), judged) == [
        "fd_leak: fd_limit_too_low is judged by a rule but not listed in docs/causes.md",
        "fd_leak: sockets_held is listed in docs/causes.md but no rule judges it",
        "memory: memory_leak is judged by a rule but not listed in docs/causes.md",
    ]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("| `fd_leak` | `x` | X | - |", "causes.md:3: 4 cells, the table has 5"),
        ("| `fd_leak` | `x` | X | - | maybe |", "causes.md:3: on the server profile is 'maybe'"),
        (
            "| `fd_leak` | `fd_leak` | X | - | decided |",
            "causes.md:4: fd_leak fd_leak is listed twice",
        ),
    ],
)
def test_a_malformed_row_names_its_line(tmp_path, row: str, error: str) -> None:
    header = (
        "| runbook | cause | shown as | guarded mitigation | on the server profile |\n|-|-|-|-|-|\n"
    )
    first = "| `fd_leak` | `fd_leak` | X | - | decided |\n" if "twice" in error else ""
    table = tmp_path / "causes.md"
    table.write_text(header + first + row + "\n")
    with pytest.raises(ValueError, match=re.escape(error)):
        read(table)
