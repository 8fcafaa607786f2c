"""Ports chosen for services a stack starts: never one the kernel hands to outgoing
connections, never one another process claimed a moment ago. CI once lost ten e2e tests
to `address already in use` on a port chosen by binding port 0."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from runbook_lib.lab import ports


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
    (tmp_path / str(low - 1)).touch()
    with pytest.raises(OSError, match=f"no free loopback port in {low - 1}-{low - 1}"):
        ports.free_port(tmp_path)
