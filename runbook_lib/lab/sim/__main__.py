"""`python -m runbook_lib.lab.sim`: run the GGEN MCP simulator until SIGTERM."""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES
from runbook_lib.lab import pids
from runbook_lib.lab.sim.app import create_app
from runbook_lib.lab.sim.core import SimConfig, Simulator

HOLDER = (
    "import socket,sys,time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "end = time.time() + 5\n"
    "while True:\n"
    "    try:\n"
    "        s.bind((sys.argv[1], int(sys.argv[2]))); break\n"
    "    except OSError:\n"
    "        if time.time() > end: raise\n"
    "        time.sleep(0.05)\n"
    "s.listen(16); print('bound', flush=True); time.sleep(float(sys.argv[3]))\n"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m runbook_lib.lab.sim", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9464)
    ap.add_argument("--state-dir", type=Path, default=Path(".state/sim"))
    ap.add_argument("--temp-dir", type=Path, help="where disk_fill writes (default STATE/tmp)")
    ap.add_argument("--log-file", type=Path, help="JSON-lines log (default STATE/ggen-mcp.log)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s in normal mode")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--max-fds", type=int, default=1024, help="soft RLIMIT_NOFILE to run with")
    ap.add_argument("--memory-limit-bytes", type=int, default=MEMORY_LIMIT_BYTES)
    ap.add_argument("--leak-mb-per-s", type=float, default=8.0)
    ap.add_argument(
        "--leak-lifetime", type=float, default=1800.0, help="seconds a leaked process lives at most"
    )
    ap.add_argument("--mode", default="normal")
    ap.add_argument(
        "--profile",
        choices=["contract", "server"],
        default="contract",
        help="the metrics to expose: the runbook's contract (ggen_mcp_*), or exactly the "
        "GGEN MCP server's (mcp_*)",
    )
    ap.add_argument("--quiet", action="store_true", help="log to the file only")
    return ap.parse_args(argv)


def lower_fd_limit(soft: int) -> None:
    cur_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < cur_soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lower_fd_limit(args.max_fds)
    state = args.state_dir.resolve()
    cfg = SimConfig(
        state_dir=state,
        temp_dir=(args.temp_dir or state / "tmp").resolve(),
        log_file=(args.log_file or state / "ggen-mcp.log").resolve(),
        rate=args.rate,
        seed=args.seed,
        memory_limit_bytes=args.memory_limit_bytes,
        leak_bytes_per_s=int(args.leak_mb_per_s * (1 << 20)),
        leak_lifetime_s=args.leak_lifetime,
        echo=not args.quiet,
        metrics_profile=args.profile,
    )
    sim = Simulator(cfg)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(sim),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    exit_reason: list[str] = []

    def on_exit_request(reason: str) -> None:
        exit_reason.append(reason)
        if reason == "crash":
            threading.Thread(target=crash, args=(sim,), daemon=True).start()
        else:
            server.should_exit = True

    sim.on_exit_request = on_exit_request
    if args.mode != "normal":
        sim.set_mode(args.mode)
    server.run()  # the app's lifespan starts and stops the simulator
    if exit_reason == ["port_conflict"]:
        return port_conflict(sim, args.host, args.port)
    return 0


def crash(sim: Simulator) -> None:
    time.sleep(0.3)  # let the admin request be answered first
    sim.log.write(
        "fatal",
        "crash",
        "FATAL: unhandled exception in request handler: "
        "TypeError: Cannot read properties of undefined (reading 'sheets'); process exiting",
    )
    os._exit(1)


def port_conflict(sim: Simulator, host: str, port: int) -> int:
    """Another process takes our port while we restart; the rebind fails with EADDRINUSE."""
    sim.log.write("warning", "restart", "restarting HTTP listener")
    holder = subprocess.Popen(
        ["ggen-mcp-old", "-S", "-c", HOLDER, host, str(port), str(sim.cfg.leak_lifetime_s)],
        executable=sim.procs._exe("ggen-mcp-old"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids.record(sim.cfg.state_dir / "pids", holder.pid, "ggen-mcp-old")
    holder.stdout.readline()
    try:
        with socket.create_server((host, port)):
            pass
        sim.log.write("error", "listen", f"listener rebound on {host}:{port} unexpectedly")
    except OSError as exc:
        sim.log.write(
            "fatal",
            "listen",
            f"Error: listen EADDRINUSE: address already in use {host}:{port}",
            errno=exc.errno,
            holder_pid=holder.pid,
        )
    sim.stop()
    return 1


if __name__ == "__main__":
    sys.exit(main())
