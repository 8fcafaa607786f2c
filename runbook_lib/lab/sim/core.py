"""The simulated service: generates its own traffic every tick, shaped by the current mode."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES
from runbook_lib.contract.tools import CACHE_TOOLS
from runbook_lib.lab.sim import faults
from runbook_lib.lab.sim.eventlog import EventLog
from runbook_lib.lab.sim.messages import error_message
from runbook_lib.lab.sim.metrics import SimMetrics
from runbook_lib.lab.sim.modes import (
    BASE_LATENCY,
    COMPONENTS,
    DB_TOOLS,
    MODES,
    TOOLS,
    Profile,
    error_tools,
)

WORKBOOK_BYTES = 400 * 1024
HEAP_BASE = 48 * 1024 * 1024


@dataclass
class SimConfig:
    state_dir: Path
    temp_dir: Path
    log_file: Path | None = None
    rate: float = 20.0  # requests per second in normal mode
    tick_s: float = 0.5
    seed: int | None = None
    memory_limit_bytes: int = MEMORY_LIMIT_BYTES
    leak_bytes_per_s: int = 8 << 20
    leak_lifetime_s: float = 1800.0
    echo: bool = True
    metrics_profile: str = "contract"  # "server": exactly the GGEN MCP server's series


class UnknownMode(ValueError):
    def __init__(self, mode: str) -> None:
        super().__init__(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.metrics = SimMetrics(cfg.metrics_profile)
        self.log = EventLog(cfg.log_file, echo=cfg.echo)
        self.mode = "normal"
        self.profile: Profile = MODES["normal"]
        self.procs = faults.ProcessFaults(
            cfg.state_dir / "bin", cfg.state_dir / "pids", cfg.leak_lifetime_s
        )
        self.fds = faults.DescriptorLeak()
        self.memory = faults.MemoryLeak(int(cfg.memory_limit_bytes * 0.95))
        self.disk = faults.DiskFill(cfg.temp_dir)
        self.cpu = faults.CpuBurn()
        self.cache_size = 0
        self.fd_exhausted = False
        self.on_exit_request: Callable[[str], None] = lambda reason: None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        self.log.write(
            "info", "start", "ggen-mcp simulator started", mode=self.mode, pid=os.getpid()
        )
        self._thread.start()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.cpu.active.clear()
        self.procs.close()
        self.fds.release()
        self.memory.release()
        self.log.write("info", "stop", "ggen-mcp simulator stopped")

    def set_mode(self, mode: str) -> dict:
        if mode not in MODES:
            raise UnknownMode(mode)
        with self._lock:
            previous = self.mode
            self._release()
            self.mode, self.profile = mode, MODES[mode]
            self.cpu.active.set() if self.profile.fault == "cpu_burn" else self.cpu.active.clear()
        self.log.write(
            "warning" if mode != "normal" else "info",
            "mode",
            f"mode {previous} -> {mode}",
            mode=mode,
            previous=previous,
        )
        if self.profile.fault in ("crash", "port_conflict"):
            self.on_exit_request(self.profile.fault)
        return {"mode": mode, "previous": previous}

    def _release(self) -> None:
        self.procs.release()
        self.fds.release()
        self.memory.release()
        self.fd_exhausted = False

    def clear_cache(self) -> int:
        with self._lock:
            dropped, self.cache_size = self.cache_size, 0
        self.log.write("info", "cache", f"cache cleared ({dropped} workbooks)", dropped=dropped)
        return dropped

    def status(self) -> dict:
        return {
            "mode": self.mode,
            "libreoffice_processes": self.procs.count("soffice"),
            "active_forks": self.procs.count("ggen-mcp-fork"),
            "leaked_fds": len(self.fds.fds),
            "leaked_bytes": self.memory.leaked,
            "temp_files": len(self.disk.written),
            "cache_size": self.cache_size,
        }

    # -- traffic -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with self._lock:
                    self.tick(self.cfg.tick_s)
            except Exception as exc:  # a broken tick must not stop the service
                self.log.write("error", "internal", f"tick failed: {exc!r}")
            self._stop.wait(max(0.0, self.cfg.tick_s - (time.monotonic() - started)))

    def tick(self, dt: float) -> None:
        p = self.profile
        self._fault_step(dt)
        self.procs.keep_pool(p.soffice_pool)
        lam = self.cfg.rate * p.rate_factor * dt
        n = int(lam) + (self.rng.random() < lam - int(lam))
        busy = 0.0
        for _ in range(n):
            busy += self._request(p)
        m = self.metrics
        m.active_requests.set(round(busy / dt, 2))
        m.cache_size.set(self.cache_size)
        m.cache_memory.set(self.cache_size * WORKBOOK_BYTES)
        m.libreoffice.set(self.procs.count("soffice"))
        m.active_forks.set(self.procs.count("ggen-mcp-fork"))
        heap = HEAP_BASE + self.memory.leaked
        m.heap_used.set(heap)
        m.heap_total.set(int(heap * 1.25))
        for component in COMPONENTS:
            m.health.labels(component).set(0 if component in p.unhealthy else 1)

    def _request(self, p: Profile) -> float:
        rng, m = self.rng, self.metrics
        tool = rng.choices(list(TOOLS), weights=list(TOOLS.values()))[0]
        hit = rng.random() < p.hit_ratio
        if hit:
            m.cache_hits.inc()
        else:
            m.cache_misses.inc()
            if self.cache_size < p.cache_max:
                self.cache_size += 1
            else:
                self.cache_size = min(self.cache_size, p.cache_max)
                m.cache_evictions.inc()
        seconds = BASE_LATENCY[tool] * p.latency_factor * rng.lognormvariate(0.0, 0.5)
        if tool in p.slow_tools:
            seconds += p.slow_extra_s * rng.uniform(0.8, 1.3)
        self._observe_operation(tool, seconds)  # the operation's own timer: after the load
        if not hit and tool in CACHE_TOOLS:  # a miss loads the workbook first
            seconds += p.miss_extra_s * rng.uniform(0.8, 1.3)
        error_type = self._error_for(p, tool)
        status = (
            "success" if error_type is None else ("timeout" if error_type == "timeout" else "error")
        )
        m.requests.labels(tool, status).inc()
        m.duration.labels(tool).observe(seconds)
        ms = int(seconds * 1000)
        if error_type is not None:
            m.errors.labels(tool, error_type).inc()
            family = self.mode.split(":", 1)[1] if self.mode.startswith("errors:") else "generic"
            key = "emfile" if self.fd_exhausted and error_type == "io_error" else error_type
            self.log.write(
                "error",
                "request",
                error_message(rng, family, key, tool, ms),
                tool=tool,
                status=status,
                error_type=error_type,
                duration_ms=ms,
            )
        elif rng.random() < 0.05:
            self.log.write(
                "info",
                "request",
                f"{tool} ok",
                tool=tool,
                status=status,
                duration_ms=ms,
                cache="hit" if hit else "miss",
            )
        return seconds

    def _error_for(self, p: Profile, tool: str) -> str | None:
        if self.fd_exhausted and self.rng.random() < 0.3:
            return "io_error"
        tools = error_tools(p)
        if tool not in tools:
            return None
        share = sum(TOOLS[t] for t in tools)
        if self.rng.random() >= p.error_ratio / share:
            return None
        return self.rng.choices(list(p.error_mix), weights=list(p.error_mix.values()))[0]

    def _observe_operation(self, tool: str, seconds: float) -> None:
        m = self.metrics
        if tool == "recalc":
            m.recalc.observe(seconds * 0.9)
        elif tool == "screenshot":
            m.screenshot.observe(seconds * 0.9)
        elif tool == "render_template":
            m.template.observe(seconds * 0.8)
        elif tool in DB_TOOLS:
            query = seconds * 0.7
            m.query.observe(query)
            if query > 1.0:
                m.slow_queries.inc()
                if self.rng.random() < 0.2:
                    self.log.write(
                        "warning",
                        "query",
                        f"slow query: SELECT * FROM workbook_cells "
                        f"WHERE workbook_id = $1 took {int(query * 1000)}ms",
                        tool=tool,
                        duration_ms=int(query * 1000),
                    )

    def _fault_step(self, dt: float) -> None:
        fault = self.profile.fault
        if fault == "soffice_leak":
            self.procs.leak("soffice")
        elif fault == "fork_leak":
            self.procs.leak("ggen-mcp-fork")
        elif fault == "fd_leak":
            exhausted = self.fds.step(max(1, int(60 * dt)))
            if exhausted and not self.fd_exhausted:
                self.log.write(
                    "error",
                    "fd",
                    "EMFILE: Too many open files (descriptor limit reached)",
                    open_fds=len(self.fds.fds),
                )
            self.fd_exhausted = exhausted
        elif fault == "memory_leak":
            self.memory.step(int(self.cfg.leak_bytes_per_s * dt))
        elif fault == "disk_fill":
            path = self.disk.step()
            if path is not None:
                self.log.write("info", "tempfile", f"wrote temp file {path}", path=str(path))
