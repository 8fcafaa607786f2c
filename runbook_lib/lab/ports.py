"""Free loopback ports for the services a stack or a test starts.

A port is chosen here and bound later by another process, so two dangers lie between:
the kernel handing the same number to an outgoing connection as its source port (bind
to port 0 answers from the ephemeral range, the very range those come from), and another
process choosing the same number at the same moment. Ports are therefore drawn below the
ephemeral range, and each choice is claimed by a file that the user's other processes respect for
`CLAIM_S` seconds, long enough for the chooser's child to bind it.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
CLAIM_S = 120.0
SPAN = 12000  # how many ports beside the ephemeral range are drawn from (`candidates`)
CLAIMS = Path(tempfile.gettempdir()) / f"runbook-ports-{os.getuid()}"  # a user's own


def port_free(port: int) -> bool:
    """Whether a listener could bind `port` on loopback now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def ephemeral_range() -> tuple[int, int]:
    """The kernel's source ports for outgoing connections (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _claim(port: int, claims: Path) -> bool:
    """Claim `port` for this process unless another claimed it within CLAIM_S: under a
    lock, so two processes never both take over the same old claim."""
    path = claims / str(port)
    with open(claims / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists() and time.time() - path.stat().st_mtime < CLAIM_S:
                return False
            path.touch()  # new, or an old claim renewed: its service bound the port or never will
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _claims_dir(claims: Path) -> Path:
    """The claims directory, this user's alone (a shared name in /tmp could be another's)."""
    claims.mkdir(mode=0o700, parents=True, exist_ok=True)
    if claims.stat().st_uid != os.getuid():
        raise OSError(f"{claims} belongs to another user: port claims cannot be kept there")
    return claims


def candidates() -> range:
    """The ports drawn from: below the ephemeral range, or above it where it starts low."""
    low, high = ephemeral_range()
    below = range(max(1024, low - SPAN), low)
    return below if len(below) >= SPAN // 4 else range(high + 1, min(65536, high + 1 + SPAN))


def free_port(claims: Path = CLAIMS) -> int:
    """A loopback port nobody listens on, nobody else claimed, and the kernel will not
    hand out as a source port."""
    ports = candidates()
    if not ports:
        raise OSError("no loopback port outside the ephemeral range "
                      f"{'-'.join(map(str, ephemeral_range()))}")  # fmt: skip
    _claims_dir(claims)
    for _ in range(200):
        port = random.choice(ports)
        if port_free(port) and _claim(port, claims):
            return port
    raise OSError(f"no free loopback port in {ports.start}-{ports.stop - 1}")
