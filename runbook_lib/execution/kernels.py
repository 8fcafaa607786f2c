"""Where a run's kernel comes from: forked from a warm zygote (the worker pool), or started
fresh (`runbook run`, one run). Either way a run gets a kernel of its own, used once and
killed afterwards with everything it started, so no run sees another's variables.

Kernels talk over Unix sockets in a private directory, not loopback TCP ports: concurrent
kernels cannot race for a port (a storm showed "Kernel died before replying to kernel_info"
once in 220 runs over TCP), and nothing listens on the network.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import IO

import psutil
from jupyter_client import AsyncKernelManager, BlockingKernelClient
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import write_connection_file
from jupyter_core.utils import run_sync

from runbook_lib.contract.environ import TEXT_SPOOL
from runbook_lib.execution import workdirs
from runbook_lib.execution.lifetime import MARK, kill_group, sweep

# Registers the inline figure formatters in the new shell; silent: execution counts stay 1..n.
WARM_UP = "get_ipython().run_line_magic('matplotlib', 'inline')"


class KernelError(RuntimeError):
    """A kernel could not be had: the message says which step failed."""


@dataclass
class Kernel:
    """A started, warmed kernel for one run."""

    km: AsyncKernelManager  # what nbclient drives (it awaits the manager's calls)
    pid: int
    mark: str  # carried by whatever the run's cells start
    workdir: Path  # its sockets and connection file
    ready_s: float  # seconds from asking to ready
    forked: bool = False

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def cpu_s(self) -> float:
        """CPU seconds the kernel process has used (user and system; 0 when it is gone)."""
        try:
            t = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return t.user + t.system + t.children_user + t.children_system

    def kill(self) -> None:
        """End the kernel and everything its cells started; remove its sockets."""
        if self.forked:
            kill_group(self.pid)
            self.km.stop_clients()  # type: ignore[attr-defined]
        else:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # a kernel already gone is what we want
                kill_group(self.pid)
        sweep(self.mark)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _answered(msg: dict, request: str) -> bool:
    """The iopub status that ends `request`: seeing it proves iopub is subscribed."""
    return (
        msg["parent_header"].get("msg_id") == request
        and msg["msg_type"] == "status"
        and msg["content"].get("execution_state") == "idle"
    )


class ReadyKernelClient(AsyncKernelClient):
    """nbclient's client for a warm kernel. Ready once the kernel has answered kernel_info
    on the shell and published that request's idle status on iopub (so no output of the
    first cell can be missed), without jupyter_client's fixed 0.2 s iopub flush."""

    async def _wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or 60)
        while time.monotonic() < deadline:
            request = self.kernel_info()
            try:
                await self.shell_channel.get_msg(timeout=1)
            except Empty:
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info") from None
                continue
            until = time.monotonic() + 0.5
            while (left := until - time.monotonic()) > 0:
                try:
                    if _answered(await self.iopub_channel.get_msg(timeout=left), request):
                        return
                except Empty:
                    break
        raise RuntimeError(f"Kernel didn't respond in {timeout or 60:.0f} seconds")

    wait_for_ready = _wait_for_ready


class ForkedKernelManager(AsyncKernelManager):
    """The manager nbclient is handed for a kernel the zygote forked: it never launches,
    it answers whether the kernel lives, interrupts it and kills it, by pid."""

    def __init__(self, pid: int, connection_file: str, **kw) -> None:
        kw.setdefault("client_class", "runbook_lib.execution.kernels.ReadyKernelClient")
        super().__init__(**kw)
        self.load_connection_file(connection_file)
        self.forked_pid = pid
        self.clients: list = []  # nbclient's, whose channels we stop when the kernel goes

    def client(self, **kwargs):
        kc = super().client(**kwargs)
        self.clients.append(kc)
        return kc

    def stop_clients(self) -> None:
        for kc in self.clients:
            kc.stop_channels()
        self.clients.clear()

    @property
    def has_kernel(self) -> bool:
        return self._alive()

    @property
    def owns_kernel(self) -> bool:
        return True

    def _alive(self) -> bool:
        try:
            return psutil.Process(self.forked_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    async def _async_is_alive(self) -> bool:
        return self._alive()

    is_alive = _async_is_alive

    async def _async_interrupt_kernel(self) -> None:
        if self._alive():
            os.kill(self.forked_pid, signal.SIGINT)

    interrupt_kernel = _async_interrupt_kernel

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        kill_group(self.forked_pid)

    shutdown_kernel = _async_shutdown_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        return None

    cleanup_resources = _async_cleanup_resources


@dataclass
class Zygote:
    """A zygote process (`runbook_lib.execution.zygote`) and the kernels forked from it."""

    mark_prefix: str
    log: IO | int | None = None
    start_timeout: float = 60.0
    proc: subprocess.Popen | None = None
    spool: Path | None = None
    _ready: bool = field(default=False, repr=False)

    def start(self) -> Zygote:
        if self.spool is None:  # where its kernels leave the texts their charts drew
            self.spool = workdirs.make("text")
        env = {**os.environ, "RUNBOOK_PARENT_PID": str(os.getpid()), TEXT_SPOOL: str(self.spool)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook_lib.execution.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        return self

    def _reply(self) -> dict:
        line = self.proc.stdout.readline() if self.proc and self.proc.stdout else ""
        if not line:
            code = self.proc.poll() if self.proc else None
            raise KernelError(f"the kernel zygote exited (status {code}); see the worker log")
        return json.loads(line)

    def fork(self, cwd: str | None = None) -> Kernel:
        """A fresh kernel, forked and warmed; raises KernelError naming what failed."""
        if self.proc is None or self.proc.poll() is not None:
            self._ready = False
            self.start()
        asked = time.monotonic()
        if not self._ready:
            self._reply()  # {"ready": pid}: the zygote has imported and warmed
            self._ready = True
        workdir = workdirs.make("kernel")
        conn, _ = write_connection_file(
            str(workdir / "kernel.json"), transport="ipc", ip=str(workdir / "k")
        )
        mark = f"{self.mark_prefix}k{uuid.uuid4().hex[:12]}"
        self.proc.stdin.write(json.dumps({"connection_file": conn, "mark": mark, "cwd": cwd}))
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        pid = self._reply()["pid"]
        km = ForkedKernelManager(pid, conn, transport="ipc")
        kernel = Kernel(km, pid, mark, workdir, 0.0, forked=True)
        _warm(kernel, self.start_timeout)
        kernel.ready_s = time.monotonic() - asked
        return kernel

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool = None


def start_fresh(mark: str, cwd: str | None = None, start_timeout: float = 60.0) -> Kernel:
    """A kernel started the ordinary way (its own interpreter), for a single run."""
    asked = time.monotonic()
    workdir = workdirs.make("kernel")
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "k"))
    km.connection_file = str(workdir / "kernel.json")
    try:
        run_sync(km.start_kernel)(env={**os.environ, MARK: mark}, cwd=cwd)
    except Exception as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise KernelError(f"could not start a python3 kernel: {exc}") from exc
    pid = km.provisioner.process.pid  # type: ignore[union-attr]
    kernel = Kernel(km, pid, mark, workdir, 0.0)
    _warm(kernel, start_timeout)
    kernel.ready_s = time.monotonic() - asked
    return kernel


def _shell_reply(kc: BlockingKernelClient, kernel: Kernel, deadline: float) -> dict:
    """The next shell reply, asked for a second at a time: a kernel that dies while warming
    up is noticed at once, not after the whole start timeout."""
    while True:
        if time.monotonic() > deadline or not kernel.alive():
            raise KernelError("the new kernel died or hung while warming up")
        try:
            return kc.get_shell_msg(timeout=1)
        except Empty:
            continue


def _warm(kernel: Kernel, timeout: float) -> None:
    """Wait until the kernel answers, then set its inline backend (silently: the notebook's
    first cell is still execution 1)."""
    kc = BlockingKernelClient()
    kc.load_connection_info(kernel.km.get_connection_info())
    try:
        kc.start_channels()
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline or not kernel.alive():
                raise KernelError(f"the new kernel did not answer within {timeout:.0f}s")
            try:
                kc.kernel_info(reply=True, timeout=1)
                break
            except TimeoutError:
                continue
        msg_id = kc.execute(WARM_UP, silent=True, store_history=False)
        reply = _shell_reply(kc, kernel, deadline)
        if reply["parent_header"].get("msg_id") != msg_id or reply["content"]["status"] != "ok":
            raise KernelError(f"kernel warm-up failed: {reply['content'].get('evalue')}")
    except KernelError:
        kernel.kill()
        raise
    except Exception as exc:  # RuntimeError("Kernel died ..."), TimeoutError
        kernel.kill()
        raise KernelError(f"the new kernel did not get ready: {exc}") from exc
    finally:
        kc.stop_channels()


def ipc_config(directory: Path):
    """papermill/nbclient configuration for a kernel on Unix sockets in `directory`."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(directory / "k")}})
