"""The order the local stack starts its components in: side by side, except Prometheus,
which starts once every target it alerts on answers (a simulator still importing at
Prometheus's first scrape would fire GgenMcpServiceDown in the fast profile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_lib.lab import stack


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `stack.start` did, in order; nothing is started (nor needs to be installed)."""
    seen: list[str] = []
    monkeypatch.setattr(stack, "_bin", lambda name: name)
    monkeypatch.setattr(stack, "_launch", lambda state, name, cmd, env=None: seen.append(
        f"launch {name}"))  # fmt: skip
    monkeypatch.setattr(stack, "_wait_ready", lambda state, name, url, timeout: seen.append(
        f"ready {name}"))  # fmt: skip
    return seen


def test_prometheus_starts_after_the_others_answer_and_the_receiver_overlaps_it(
    tmp_path: Path, events: list[str]
) -> None:
    info = stack.start(stack.StackOptions(state_dir=tmp_path, any_free_port=True, receiver=True,
                                          output_dir=tmp_path / "records"))  # fmt: skip
    assert events == [
        "launch ggen-mcp", "launch node-exporter", "launch alertmanager", "launch runbook",
        "ready ggen-mcp", "ready node-exporter", "ready alertmanager",
        "launch prometheus", "ready prometheus",
        "ready runbook",
    ]  # fmt: skip
    assert info.receiver and (tmp_path / "stack.json").exists()


def test_without_a_receiver_prometheus_is_still_last(tmp_path: Path, events: list[str]) -> None:
    stack.start(stack.StackOptions(state_dir=tmp_path, any_free_port=True))
    assert events == [
        "launch ggen-mcp", "launch node-exporter", "launch alertmanager",
        "ready ggen-mcp", "ready node-exporter", "ready alertmanager",
        "launch prometheus", "ready prometheus",
    ]  # fmt: skip
