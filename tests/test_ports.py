"""Ports chosen for services a stack starts: never one the kernel hands to outgoing
connections, never one another process claimed a moment ago. CI once lost ten e2e tests
to `address already in use` on a port chosen by binding port 0."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from runbook_lib.lab import pids, ports, stack


def test_a_port_is_drawn_below_the_kernels_source_ports(tmp_path: Path) -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chosen = {ports.free_port(tmp_path) for _ in range(40)}
    assert all(1024 <= p < low for p in chosen), sorted(chosen)
    assert len(chosen) == 40  # each one claimed: none handed out twice


def test_a_claimed_port_is_skipped_until_its_claim_is_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low = ports.ephemeral_range()[0]
    monkeypatch.setattr(ports, "SPAN", 3)
    monkeypatch.setattr(ports, "port_free", lambda port: True)  # claims alone decide here
    a, b, c = low - 3, low - 2, low - 1
    for claimed in (a, b):
        (tmp_path / str(claimed)).touch()
    assert ports.free_port(tmp_path) == c
    old = time.time() - ports.CLAIM_S - 5
    os.utime(tmp_path / str(a), (old, old))
    assert ports.free_port(tmp_path) == a  # the others are all claimed now, c too


def test_a_port_someone_listens_on_is_not_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low = ports.ephemeral_range()[0]
    monkeypatch.setattr(ports, "SPAN", 2)
    taken, other = low - 2, low - 1
    if not (ports.port_free(taken) and ports.port_free(other)):
        pytest.skip(f"port {taken} or {other} is in use on this machine")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        chosen = {ports.free_port(tmp_path / str(i)) for i in range(10)}  # fresh claims
    assert chosen == {other}


def test_no_port_left_is_an_error_naming_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low = ports.ephemeral_range()[0]
    monkeypatch.setattr(ports, "SPAN", 1)
    monkeypatch.setattr(ports, "port_free", lambda port: True)
    (tmp_path / str(low - 1)).touch()
    with pytest.raises(OSError, match=f"no free loopback port in {low - 1}-{low - 1}"):
        ports.free_port(tmp_path)


def _stand_ins(info: stack.StackInfo, profile: object, opts: stack.StackOptions) -> list:
    """Stand-ins for the stack's components (this tests the start, not them): a plain HTTP
    server on each component's port, answering / with 200."""
    names = [n for n in info.ports if n != "runbook"]
    return [(n, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(info.ports[n])],
             f"http://127.0.0.1:{info.ports[n]}/") for n in names]  # fmt: skip


def test_a_port_taken_before_its_component_binds_it_starts_the_stack_on_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As in CI: a port was free when chosen and taken when the simulator bound it."""
    thief = socket.socket()
    thief.bind(("127.0.0.1", 0))
    thief.listen()
    stolen = thief.getsockname()[1]
    chosen: list[dict] = []
    real = stack.choose_ports

    def choose(preferred=None, *, any_free=False):
        picked = real(preferred, any_free=any_free)
        picked = {**picked, "ggen_mcp": stolen} if not chosen else picked
        chosen.append(picked)
        return picked

    monkeypatch.setattr(stack, "choose_ports", choose)
    monkeypatch.setattr(stack, "_components", _stand_ins)
    state = tmp_path / "stack"
    try:
        info = stack.start(stack.StackOptions(state_dir=state, any_free_port=True,
                                              output_dir=tmp_path / "records"))  # fmt: skip
        assert len(chosen) == 2 and info.ports == chosen[1]
        assert stolen not in info.ports.values()
        for port in set(info.ports.values()) - {info.ports["runbook"]}:
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        [warned] = [r.getMessage() for r in caplog.records if r.name == "runbook.lab"]
        assert warned.startswith("ggen_mcp exited while starting: OSError: [Errno 98] Address")
        first = (state / stack.FIRST_ATTEMPT / "ggen_mcp.log").read_text()
        assert "Address already in use" in first  # what the warning quotes, kept
    finally:
        stopped = stack.stop(state)
        thief.close()
    assert len(stopped) == 4  # the four stand-ins of the second start; the first's are gone


@pytest.mark.parametrize(
    "code,error",
    [
        ("raise SystemExit('no licence')", "ggen-mcp exited while starting:\n.*no licence"),
        # it says the phrase but hangs: only a component that exited is retried
        ("print('x: address already in use', flush=True); import time; time.sleep(60)",
         "ggen-mcp did not answer"),
    ],
)  # fmt: skip
def test_a_component_failing_otherwise_is_not_started_again(
    code: str, error: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[int] = []

    def failing(info, profile, opts):
        starts.append(1)
        return [("ggen-mcp", [sys.executable, "-c", code],
                 f"http://127.0.0.1:{ports.free_port()}/")]  # fmt: skip

    monkeypatch.setattr(stack, "_components", failing)
    with pytest.raises(stack.StackError, match=error):
        stack.start(stack.StackOptions(state_dir=tmp_path, any_free_port=True, start_timeout=1.0,
                                       output_dir=tmp_path / "records"))  # fmt: skip
    assert starts == [1]
    assert not pids.records(tmp_path / "pids")  # stopped, not left hanging


@pytest.mark.parametrize(
    "ephemeral,drawn",
    [
        ((32768, 60999), range(20768, 32768)),  # Linux's default: below it
        ((1024, 40000), range(40001, 52001)),  # starting low: above it
        ((1024, 65535), range(65536, 65536)),  # everything: nothing left
    ],
)
def test_the_ports_drawn_from_avoid_the_ephemeral_range_wherever_it_lies(
    ephemeral: tuple[int, int], drawn: range, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ports, "ephemeral_range", lambda: ephemeral)
    assert ports.candidates() == drawn
    if not drawn:
        with pytest.raises(
            OSError, match="no loopback port outside the ephemeral range 1024-65535"
        ):
            ports.free_port(tmp_path)
