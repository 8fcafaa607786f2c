"""One `Cause` per cause id: its rules, its resolution commands, its guarded mitigation."""

from __future__ import annotations

import pytest

from runbook_lib.diagnosis import engine
from runbook_lib.diagnosis.engine import CAUSES, NO_COMMANDS, Cause
from runbook_lib.diagnosis.mitigation import ACTIONS
from runbook_lib.diagnosis.resolution import commands
from tests.test_diagnosis import DESIGN_CAUSES


def test_every_cause_of_the_design_is_one_cause_object() -> None:
    expected = set().union(*DESIGN_CAUSES.values())
    assert set(CAUSES) == expected and len(CAUSES) == 29
    for cause in CAUSES.values():
        assert isinstance(cause, Cause)
        runbooks = {rb for rb, causes in DESIGN_CAUSES.items() if cause.id in causes}
        assert set(cause.rules) == runbooks, cause.id
        assert cause.commands != NO_COMMANDS and cause.commands.strip(), cause.id


def test_shared_causes_keep_one_object_with_a_rule_per_runbook() -> None:
    orphaned = CAUSES["orphaned_processes"]
    assert set(orphaned.rules) == {"libreoffice_leak", "fork_leak"}
    assert orphaned.rules["libreoffice_leak"] is not orphaned.rules["fork_leak"]


def test_mitigations_are_the_guarded_actions_written_in_the_runbook() -> None:
    with_action = {c.id: c.mitigation for c in CAUSES.values() if c.mitigation}
    assert with_action == {
        "process_crashed": "restart_container",
        "memory_leak": "restart_container",
        "hung_processes": "end_old_soffice",
        "zombie_processes": "restart_container",
        "fd_leak": "restart_container",
        "temp_files_not_cleaned": "clean_temp_files",
    }
    assert set(with_action.values()) <= set(ACTIONS)


def test_each_notebook_mitigation_belongs_to_a_cause_of_its_runbook() -> None:
    import re

    from runbook_lib.contract.config import NOTEBOOKS

    found = 0
    for path in NOTEBOOKS.glob("*.ipynb"):
        offered = {CAUSES[c].mitigation for c in DESIGN_CAUSES.get(path.stem, ())}
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
