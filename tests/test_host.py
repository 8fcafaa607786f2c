"""Host checks against real processes, sockets, files and the real kernel log of this machine.

Processes are matched by a token unique to this run (the lifetime argument of the fault
processes, an extra argv of the others), so other tests running at the same time, with their
own soffice processes, do not change what these see.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pytest

from runbook_lib.evidence import host, host_state
from runbook_lib.lab.sim.faults import ProcessFaults
from tests.polling import wait_for

# Host-wide process checks: never beside another test that spawns named processes.
pytestmark = pytest.mark.xdist_group("host")

FUTURE = 3600.0  # `now` this far ahead makes every process "old"

HOLD_FDS = (
    "import os,sys,time\n"
    "fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(int(sys.argv[1]))]\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
LISTEN = (
    "import socket,sys,time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "time.sleep(60)\n"
)
BUSY = "import sys\nprint('ready', flush=True)\nwhile True:\n    pass\n"


def status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


@dataclass
class Faults:
    token: str  # in the cmdline of `hung` and `orphan`
    hung: int
    zombie: int
    orphan: int


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    base = tmp_path_factory.mktemp("faults")
    lifetime = 60 + secrets.randbelow(10**6) / 10**7  # its str() is our match token
    pf = ProcessFaults(base / "bin", base / "pids", lifetime)
    try:
        spawned = [pf.spawn("soffice", kind) for kind in ("hung", "zombie", "orphan")]
        pf.leaked["soffice"] += spawned  # so close() ends (and reaps) every one of them
        (hung, _), (zombie, _), (orphan, _) = spawned
        wait_for(lambda: status(zombie) == psutil.STATUS_ZOMBIE, 5, "the zombie", every=0.05)
        yield Faults(str(lifetime), hung, zombie, orphan)
    finally:
        pf.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    """Start a python child whose first stdout line says it is ready; killed at teardown."""
    procs: list[subprocess.Popen] = []

    def _start(code: str, *args: str, nofile: int | None = None) -> tuple[subprocess.Popen, str]:
        def limit() -> None:
            if nofile is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", code, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        procs.append(proc)
        return proc, proc.stdout.readline().strip()

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


# --- processes ------------------------------------------------------------------------------


def test_processes_finds_exactly_the_spawned_ones(faults: Faults) -> None:
    found = host.processes(faults.token)
    assert found.error is None
    assert found.pids == {faults.hung, faults.orphan}  # the zombie has no cmdline left
    for p in found:
        assert p.name == "soffice"
        assert "--headless" in p.cmdline and faults.token in p.cmdline
        assert p.status != psutil.STATUS_ZOMBIE
    by_name = {p.pid: p for p in host.processes("SOFFICE")}
    assert {faults.hung, faults.zombie, faults.orphan} <= by_name.keys()
    zombie = by_name[faults.zombie]
    assert zombie.name == "soffice" and zombie.cmdline == ""
    assert zombie.error is None, "a zombie's missing cmdline is expected, not a read error"
    assert by_name[faults.hung].ppid == os.getpid()
    assert by_name[faults.hung].parent_name == psutil.Process().name()


def test_named_takes_the_processes_of_exactly_those_names_in_their_order(tmp_path) -> None:
    """host_state's watched processes, from one pass over the process table: a process is
    taken by its name, not because its command line mentions one."""
    from runbook_lib.evidence import host_state

    token = secrets.token_hex(4)
    first, second = f"rba{token}", f"rbb{token}"  # under 15 characters: the kernel's name
    for name in (first, second):
        shutil.copy(shutil.which("sleep"), tmp_path / name)
    procs = [subprocess.Popen([tmp_path / name, "30"]) for name in (first, second, first)]
    procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", first]))
    try:
        found = host.named([second, first])
        assert found.error is None
        assert [(p.name, p.pid) for p in found] == [
            (second, procs[1].pid), (first, procs[0].pid), (first, procs[2].pid)
        ]  # fmt: skip
        snap = host_state.take(names=(first,))
        assert [p["pid"] for p in snap["processes"]] == [procs[0].pid, procs[2].pid]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_processes_reads_the_real_numbers(faults: Faults) -> None:
    now = time.time()
    (p,) = [p for p in host.processes(faults.token, now=now + FUTURE) if p.pid == faults.hung]
    real = psutil.Process(faults.hung)
    assert p.create_time == pytest.approx(real.create_time())
    assert p.age_s == pytest.approx(now + FUTURE - real.create_time(), abs=0.5)
    assert p.rss_bytes == pytest.approx(real.memory_info().rss, rel=0.2)
    assert p.num_fds == len(os.listdir(f"/proc/{faults.hung}/fd"))
    assert p.fd_limit == real.rlimit(psutil.RLIMIT_NOFILE)[0]
    assert p.username == real.username() and p.error is None
    frame = host.processes(faults.token).to_frame()
    assert {"pid", "cmdline", "is_zombie", "is_orphan", "idle"} <= set(frame.columns)
    assert set(frame["pid"]) == {faults.hung, faults.orphan}
    assert list(host.processes(f"no-such-{uuid.uuid4().hex}").to_frame().columns) == list(
        frame.columns
    )


def test_zombies_include_the_zombie_only(faults: Faults) -> None:
    found = host.zombies("soffice")
    assert faults.zombie in found.pids
    assert not {faults.hung, faults.orphan} & found.pids
    assert all(p.is_zombie and p.status == psutil.STATUS_ZOMBIE for p in found)
    assert faults.zombie in host.zombies().pids


def test_orphans_include_the_reparented_process(faults: Faults) -> None:
    # On this machine orphans are reparented to pid 1 (process_api, no subreaper).
    assert psutil.Process(faults.orphan).ppid() == 1
    found = host.orphans(faults.token)
    assert found.pids == {faults.orphan}
    assert found[0].is_orphan and found[0].ppid == 1
    everyone = host.orphans(None)
    assert faults.orphan in everyone.pids and 1 not in everyone.pids
    assert all(p.ppid == 1 for p in everyone), "kernel threads (ppid 0) are not orphans"
    # A parent other than the expected one also counts; our own child does not.
    pytest_name = psutil.Process().name()
    assert host.orphans("soffice", expected_parent=pytest_name).pids >= {faults.orphan}
    assert faults.hung not in host.orphans("soffice", expected_parent=pytest_name).pids


def test_hung_includes_sleepers_not_busy_or_young_processes(faults: Faults, start) -> None:
    busy, _ = start(BUSY, faults.token)
    assert busy.pid in host.processes(faults.token).pids
    future = time.time() + FUTURE
    found = host.hung(faults.token, min_age_s=0, now=future)
    assert faults.hung in found.pids and faults.orphan in found.pids
    assert busy.pid not in found.pids, "a busy loop is not hung, however old"
    assert faults.zombie not in host.hung("soffice", min_age_s=0, now=future).pids
    # Real time: everything is seconds old, so nothing is idle yet.
    assert not host.hung(faults.token, min_age_s=0).pids
    # Younger than min_age_s.
    assert not host.hung(faults.token, min_age_s=2 * FUTURE, now=future).pids


# --- descriptors ----------------------------------------------------------------------------


def test_descriptors_against_the_process_own_limit(start) -> None:
    token = f"fds-{uuid.uuid4().hex}"
    heavy, ready = start(HOLD_FDS, "300", token, nofile=400)
    light, _ = start(HOLD_FDS, "10", token, nofile=400)
    assert ready == "ready"
    (usage,) = host.descriptors(pid=heavy.pid)
    assert usage.pid == heavy.pid and usage.error is None
    assert usage.fd_limit == 400
    assert usage.num_fds == len(os.listdir(f"/proc/{heavy.pid}/fd")) >= 300
    assert usage.ratio == pytest.approx(usage.num_fds / 400) and usage.ratio > 0.7
    ranked = host.descriptors(token)
    assert [u.pid for u in ranked] == [heavy.pid, light.pid]
    assert ranked[1].ratio < 0.1
    assert list(ranked.to_frame()["pid"]) == [heavy.pid, light.pid]


def test_descriptors_of_a_missing_pid_is_an_error_not_an_exception(start) -> None:
    proc, _ = start(HOLD_FDS, "0")
    proc.kill()
    proc.wait()
    result = host.descriptors(pid=proc.pid)
    assert len(result) == 0 and str(proc.pid) in result.error


def _unprivileged(fn) -> dict:
    """Run `fn` in a forked child that dropped root, and return its JSON result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, json.dumps(fn()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0, "the unprivileged child failed"
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_access_denied_is_reported_not_raised() -> None:
    me = os.getpid()

    def probe() -> dict:
        (fd,) = host.descriptors(pid=me)
        (info,) = [p for p in host.processes() if p.pid == me]
        oom = host.oom_events(kern_log="/nonexistent/kern.log")
        return {
            "fd": asdict(fd),
            "info_error": info.error,
            "info_cpu": info.cpu_seconds,
            "oom_error": oom.error,
            "oom_n": len(oom.events),
        }

    out = _unprivileged(probe)
    assert out["fd"]["num_fds"] is None and out["fd"]["fd_limit"] is None
    assert out["fd"]["ratio"] is None
    assert "num_fds: access denied" in out["fd"]["error"]
    assert "fd_limit: access denied" in out["fd"]["error"]
    assert "num_fds: access denied" in out["info_error"]
    assert out["info_cpu"] is not None, "what is readable is still read"
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() == "1":
        err = out["oom_error"]
        assert out["oom_n"] == 0 and err.startswith("kernel log not readable")
        assert "dmesg:" in err and "kmsg:" in err and "/nonexistent/kern.log" in err


# --- listeners ------------------------------------------------------------------------------


def test_listeners_name_the_process_holding_the_port(start) -> None:
    token = f"listen-{uuid.uuid4().hex}"
    proc, port = start(LISTEN, token)
    port = int(port)
    (found,) = host.listeners(port)
    assert found.pid == proc.pid and found.port == port and found.ip == "127.0.0.1"
    assert found.family == "IPv4" and token in found.cmdline and found.name.startswith("python")
    assert proc.pid in {x.pid for x in host.listeners()}
    proc.kill()
    proc.wait()
    assert len(host.listeners(port)) == 0


# --- memory, load, disks --------------------------------------------------------------------


def _meminfo_kb(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def test_memory_matches_proc_meminfo() -> None:
    m = host.memory()
    assert m.error is None
    assert m.total == _meminfo_kb("MemTotal") * 1024
    assert m.swap_total == _meminfo_kb("SwapTotal") * 1024
    assert 0 < m.available <= m.total
    assert m.used_percent == pytest.approx(100 * (m.total - m.available) / m.total, abs=1)
    assert 0 <= m.swap_used <= m.swap_total
    assert list(m.to_frame()["total"]) == [m.total]


def test_load_sees_a_busy_core(start) -> None:
    start(BUSY)
    info = host.load()
    assert info.error is None
    assert info.cpu_count == os.cpu_count()
    assert info.load1 == pytest.approx(os.getloadavg()[0], abs=1.0)
    assert 100 / os.cpu_count() * 0.6 < info.cpu_percent <= 100, "one core is kept busy"
    assert info.saturated == (info.load1 > info.cpu_count)
    assert host.LoadInfo(4.0, 1.0, 1.0, 2, 50.0).saturated
    assert not host.LoadInfo(1.5, 1.0, 1.0, 2, 50.0).saturated
    assert host.LoadInfo(3.0, 1.0, 1.0, 2, 50.0).load_per_cpu == 1.5


def test_a_snapshot_reads_the_load_averages_without_sampling_cpu_use(monkeypatch) -> None:
    """The diagnosis reads load1 and the core count only: `take` must not sleep 0.2 s per
    record in psutil.cpu_percent (it was a fifth of a second of every record's wall time)."""
    quick = host.load(interval_s=None)
    assert quick.cpu_percent is None and quick.error is None
    assert quick.load1 == pytest.approx(os.getloadavg()[0], abs=1.0)
    asked: list = []
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: asked.append(interval))
    snap = host_state.take()
    assert asked == [] and snap["load"]["cpu_count"] == os.cpu_count(), (asked, snap["load"])
    assert snap["load"]["load1"] == pytest.approx(os.getloadavg()[0], abs=1.0)


def test_disks_include_root_consistent_with_shutil() -> None:
    found = host.disks()
    assert found.error is None
    (root,) = [d for d in found if d.mountpoint == "/"]
    real = shutil.disk_usage("/")
    assert 0 < root.used_percent < 100
    assert root.used_percent == pytest.approx(100 * real.used / (real.used + real.free), abs=1)
    assert root.total == pytest.approx(real.total, rel=0.01)
    assert not {d.fstype for d in found} & {"proc", "sysfs", "tmpfs", "cgroup", "cgroup2"}
    percents = [d.used_percent for d in found]
    assert percents == sorted(percents, reverse=True)


# --- largest, temp files --------------------------------------------------------------------


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _write(root / "a" / "x.bin", 3000)
    _write(root / "a" / "sub" / "y.bin", 5000)
    _write(root / "b" / "z.bin", 1000)
    _write(root / "c" / "big.bin", 20000)
    _write(root / "top.bin", 12000)
    outside = tmp_path / "outside"
    _write(outside / "huge.bin", 50000)
    (root / "link_dir").symlink_to(outside, target_is_directory=True)
    (root / "a" / "link_file").symlink_to(outside / "huge.bin")
    return root


def test_largest_orders_and_sizes(tree: Path) -> None:
    r = host.largest([tree])
    assert r.error is None and not r.truncated and not r.skipped
    assert [(Path(d.path).name, d.size_bytes, d.files) for d in r.dirs] == [
        ("c", 20000, 1),
        ("a", 8000, 2),
        ("b", 1000, 1),
    ]
    assert [(Path(f.path).name, f.size_bytes) for f in r.files] == [
        ("big.bin", 20000),
        ("top.bin", 12000),
        ("y.bin", 5000),
        ("x.bin", 3000),
        ("z.bin", 1000),
    ]
    assert not any("outside" in e.path or "link" in e.path for e in r.dirs + r.files)
    frame = r.to_frame()
    assert list(frame["kind"]).count("dir") == 3 and frame["size_bytes"].max() == 20000


def test_largest_honors_top_min_size_and_max_entries(tree: Path, tmp_path: Path) -> None:
    r = host.largest([str(tree)], top=2)
    assert [Path(d.path).name for d in r.dirs] == ["c", "a"]
    assert [f.size_bytes for f in r.files] == [20000, 12000]
    assert [f.size_bytes for f in host.largest([tree], min_file_bytes=4000).files] == [
        20000,
        12000,
        5000,
    ]
    small = host.largest([tree], max_entries=3)
    assert small.truncated and small.scanned == 3
    missing = tmp_path / "missing"
    both = host.largest([missing, tree / "a"])
    assert [Path(d.path).name for d in both.dirs] == ["sub"]
    assert any(str(missing) in s for s in both.skipped) and str(missing) in both.error


def test_temp_files_counts_old_and_fresh(tmp_path: Path) -> None:
    now = time.time()
    for name, size, age in [
        ("ggen-mcp-old1.xlsx.tmp", 2000, 2 * 86400),
        ("ggen-mcp-old2.xlsx.tmp", 3000, 3 * 86400),
        ("ggen-mcp-new.xlsx.tmp", 500, 60),
        ("other.tmp", 7000, 5 * 86400),
    ]:
        path = _write(tmp_path / name, size)
        os.utime(path, (now - age, now - age))
    (tmp_path / "ggen-mcp-dir").mkdir()
    r = host.temp_files(tmp_path, now=now)
    assert r.error is None
    assert [Path(f.path).name for f in r.items] == [
        "ggen-mcp-old2.xlsx.tmp",
        "ggen-mcp-old1.xlsx.tmp",
        "ggen-mcp-new.xlsx.tmp",
    ]
    assert (r.count, r.total_bytes, r.old_count, r.old_bytes) == (3, 5500, 2, 5000)
    assert r.items[0].age_s == pytest.approx(3 * 86400, abs=1)
    assert host.temp_files(tmp_path, now=now + 7 * 86400).old_count == 3
    assert host.temp_files(tmp_path, older_than_s=4 * 86400, now=now).old_count == 0
    assert list(r.to_frame()["old"]) == [True, True, False]
    gone = host.temp_files(tmp_path / "nope")
    assert gone.count == 0 and "No such file" in gone.error


# --- kernel log -----------------------------------------------------------------------------


def test_oom_events_reads_the_kernel_log_or_says_why() -> None:
    ev = host.oom_events()
    if ev.error is None:
        assert ev.source in host.OOM_SOURCES and ev.scanned > 0
        assert all(host.OOM_RE.search(line) for line in ev.lines)
    else:
        assert ev.events == () and ev.source is None
        assert all(f"{s}:" in ev.error for s in host.OOM_SOURCES)
    future = host.oom_events(since=time.time() + FUTURE)
    assert future.events == () and future.error == ev.error


def test_dmesg_and_kmsg_agree() -> None:
    d = host.oom_events(sources=("dmesg",))
    k = host.oom_events(sources=("kmsg",))
    if d.error or k.error:
        pytest.skip(f"kernel log not readable here: {d.error or k.error}")
    assert d.source == "dmesg" and k.source == "kmsg" and d.scanned > 0 and k.scanned > 0
    assert set(d.lines) <= set(k.lines)
    kmsg_times = {}
    for e in k.events:
        kmsg_times.setdefault(e.text, set()).add(round(e.time))
    for e in d.events:
        assert any(abs(round(e.time) - t) <= 2 for t in kmsg_times[e.text]), e.text
    since = max((e.time for e in k.events), default=time.time())
    assert all(e.time >= since for e in host.oom_events(since, sources=("kmsg",)).events)


def test_kern_log_fallback_parses_and_filters(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    year = time.localtime().tm_year
    log.write_text(
        "2024-03-01T10:00:00.000000+00:00 host kernel: Out of memory: Killed process 41 (a)\n"
        "2024-03-01T10:00:05.000000+00:00 host kernel: eth0: link up\n"
        "2024-03-02T10:00:00.000000+00:00 host kernel: python3 invoked oom-killer: gfp\n"
        "Jan  5 08:00:00 host kernel: Memory cgroup out of memory: Killed process 7 (b)\n"
        "garbage without time: oom-kill:constraint=CONSTRAINT_MEMCG\n"
    )
    ev = host.oom_events(sources=("nope", "kern.log"), kern_log=log)
    assert ev.source == "kern.log" and ev.scanned == 5 and ev.error is None
    assert ev.tried and ev.tried[0].startswith("nope:")
    assert len(ev.lines) == 4 and not any("link up" in line for line in ev.lines)
    assert ev.events[0].time == pytest.approx(1709287200.0)
    jan5 = time.mktime((year, 1, 5, 8, 0, 0, 0, 0, -1))
    if jan5 > time.time() + 86400:  # early January: a stamp without a year is last year's
        jan5 = time.mktime((year - 1, 1, 5, 8, 0, 0, 0, 0, -1))
    assert any(e.time == pytest.approx(jan5) for e in ev.events if "(b)" in e.text)
    since = host.oom_events(1709290000.0, sources=("kern.log",), kern_log=log)
    assert "python3 invoked oom-killer: gfp" in since.lines[0]
    assert not any("(a)" in line or "garbage" in line for line in since.lines)


def test_unreadable_kern_log_is_an_error_and_does_not_block(tmp_path: Path) -> None:
    missing = host.oom_events(sources=("kern.log",), kern_log=tmp_path / "none.log")
    assert missing.events == () and "none.log" in missing.error
    assert "No such file" in missing.error
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    blocked = host.oom_events(sources=("kern.log",), kern_log=fifo)
    assert time.monotonic() - started < 2
    assert "not a regular file" in blocked.error
