"""Log reading and symptom matching, against real files, subprocesses and the simulator's log."""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from runbook_lib.evidence import logs
from runbook_lib.evidence.logs import (
    PATTERNS,
    ContainerSource,
    FileSource,
    JournalSource,
    LogLine,
    cache_key_stats,
    match,
    parse_line,
    parse_ts,
    redact,
    source_for,
)
from runbook_lib.lab.sim.eventlog import EventLog
from runbook_lib.lab.sim.messages import ERROR_MESSAGES, error_message

T0 = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)


def at(minute: int, second: float = 0) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=second)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jline(ts: datetime, level: str, msg: str, **fields: object) -> str:
    """A line shaped exactly like the simulator's EventLog writes it."""
    return json.dumps({"ts": iso(ts), "level": level, "event": "request", "msg": msg, **fields})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def matched(text: str) -> set[str]:
    return {pid for pid, p in PATTERNS.items() if p.search(text)}


# -- patterns ------------------------------------------------------------------------------

# Every simulator template, and the exact set of patterns it must hit (no more, no less).
SIM_EXPECTED = {
    "invalid_input": {"validation_error"},
    "parse_error": {"parse_error"},
    "database:io_error": {"connection_refused"},
    "database:timeout": {"db_timeout", "timeout"},
    "third_party:unknown": {"http_5xx"},
    "third_party:timeout": {"timeout"},
    "recalc_error": {"libreoffice_start_failed"},
    "fork_error": {"libreoffice_start_failed", "fork_failed"},
    "timeout": {"timeout"},
    "emfile": {"too_many_open_files"},
    "io_error": set(),
    "not_found": set(),
    "unknown": set(),
}

# Messages the simulator writes inline (core.py, __main__.py), copied verbatim.
SIM_INLINE = {
    "FATAL: unhandled exception in request handler: TypeError: Cannot read properties of "
    "undefined (reading 'sheets'); process exiting": {"fatal"},
    "Error: listen EADDRINUSE: address already in use 127.0.0.1:9464": {"eaddrinuse"},
    "slow query: SELECT * FROM workbook_cells WHERE workbook_id = $1 took 1840ms": {"slow_query"},
    "EMFILE: Too many open files (descriptor limit reached)": {"too_many_open_files"},
    "ggen-mcp simulator started": set(),
    "mode normal -> errors:database": set(),
    "cache cleared (12 workbooks)": set(),
    "read_table ok": set(),
    "wrote temp file /tmp/ggen-mcp-1234.xlsx": set(),
}

# Real-world phrasings: (text, pattern that must match).
REAL_POSITIVE = [
    ("Error: connect ECONNREFUSED 10.0.0.5:6379", "connection_refused"),
    ("could not connect to server: Connection refused", "connection_refused"),
    ("Connection terminated due to connection timeout", "db_timeout"),
    ("timeout exceeded when trying to connect", "db_timeout"),
    ("ERROR: canceling statement due to statement timeout", "db_timeout"),
    ("Knex: Timeout acquiring a connection. The pool is probably full.", "db_timeout"),
    ("upstream returned HTTP 502 Bad Gateway", "http_5xx"),
    ("GET /render -> 503 Service Unavailable", "http_5xx"),
    ("AxiosError: Request failed with status code 504", "http_5xx"),
    ("HTTP/1.1 500 Internal Server Error", "http_5xx"),
    ("socket hang up: ETIMEDOUT", "timeout"),
    ("operation timed out after 30000 ms", "timeout"),
    ("listen EADDRINUSE :::9464", "eaddrinuse"),
    ("Failed to start LibreOffice: timeout waiting for pipe", "libreoffice_start_failed"),
    ("Error: EMFILE: too many open files, open '/tmp/x'", "too_many_open_files"),
    ("spawn soffice EAGAIN", "fork_failed"),
    ("LOG:  duration: 2345.678 ms  statement: SELECT 1", "slow_query"),
    ("Killed", "oom_killed"),
    ("./start.sh: line 3:  4242 Killed                  node server.js", "oom_killed"),
    ("Out of memory: Killed process 4242 (node) total-vm:4096kB", "oom_killed"),
    ("Memory cgroup out of memory: Kill process 4242", "oom_killed"),
    ("container ggen-mcp-server was OOMKilled", "oom_killed"),
    ("node invoked oom-killer: gfp_mask=0x100cca", "oom_killed"),
    ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", "fatal"),
    (
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "oom_killed",
    ),
    ("UnhandledPromiseRejectionWarning: Error: boom", "fatal"),
    ("Uncaught TypeError: x is not a function", "fatal"),
    ("ZodError: expected string, received number", "validation_error"),
    ("invalid input: sheet index out of range", "validation_error"),
    ("SyntaxError: Unexpected token } in JSON at position 12", "parse_error"),
    ("failed to parse formula '=SUM(A1'", "parse_error"),
    ("write failed: ENOSPC: no space left on device", "disk_full"),
    ("cache_evicted workbook=wb-3 key=k9 reason=lru", "cache_evict_capacity"),
    ("cache eviction workbook=wb-3 key=k9 reason=expired", "cache_evict_ttl"),
    ("cache miss workbook=wb-12 key=sha1:ab12", "cache_miss"),
]

# Text that must NOT match the pattern (ordinary words, neighbouring causes).
REAL_NEGATIVE = [
    ("we hired skilled workers", "oom_killed"),
    ("killed 0 sessions during shutdown", "oom_killed"),
    ("room booked", "oom_killed"),
    ("non-fatal: retrying", "fatal"),
    ("external API request timeout after 1200ms (recalc)", "db_timeout"),
    ("request timeout after 4000ms (list_workbooks)", "db_timeout"),
    ("cache evict workbook=wb-12 key=k1 reason=capacity", "cache_evict_ttl"),
    ("cache evict workbook=wb-12 key=k1 reason=ttl", "cache_evict_capacity"),
    ("cache hit workbook=wb-12 key=k1", "cache_miss"),
    ("served 503 requests", "http_5xx"),
    ("duration_ms=5030", "http_5xx"),
    ("fork_workbook ok", "fork_failed"),
    ("LibreOffice started (pid 42)", "libreoffice_start_failed"),
]


@pytest.mark.parametrize("kind", sorted(ERROR_MESSAGES))
def test_every_simulator_template_hits_exactly_its_patterns(kind: str) -> None:
    for template in ERROR_MESSAGES[kind]:
        text = template.format(tool="read_table", ms=1234, n=4242)
        assert matched(text) == SIM_EXPECTED[kind], text


@pytest.mark.parametrize("text", sorted(SIM_INLINE))
def test_simulator_inline_messages_hit_exactly_their_patterns(text: str) -> None:
    assert matched(text) == SIM_INLINE[text]


@pytest.mark.parametrize(("text", "pid"), REAL_POSITIVE)
def test_real_world_phrasings_match(text: str, pid: str) -> None:
    assert PATTERNS[pid].search(text)


@pytest.mark.parametrize(("text", "pid"), REAL_NEGATIVE)
def test_lookalikes_do_not_match(text: str, pid: str) -> None:
    assert not PATTERNS[pid].search(text)


def test_keyword_prefilter_never_hides_a_regex_match() -> None:
    corpus = [t.format(tool="recalc", ms=9, n=1) for ts in ERROR_MESSAGES.values() for t in ts]
    corpus += list(SIM_INLINE) + [t for t, _ in REAL_POSITIVE + REAL_NEGATIVE]
    for text in corpus:
        for pid, p in PATTERNS.items():
            assert p.search(text) == bool(p.regex.search(text)), (pid, text)


def test_catalogue_has_the_runbook_symptoms() -> None:
    required = {
        "validation_error",
        "parse_error",
        "connection_refused",
        "db_timeout",
        "http_5xx",
        "timeout",
        "eaddrinuse",
        "libreoffice_start_failed",
        "too_many_open_files",
        "slow_query",
        "oom_killed",
        "fatal",
        "cache_evict_capacity",
        "cache_evict_ttl",
        "cache_miss",
    }
    assert required <= set(PATTERNS)
    for pid, p in PATTERNS.items():
        assert p.id == pid and p.description and p.symptom
        assert p.regex.flags & re.IGNORECASE


def test_detail_fields_are_matched_but_other_fields_are_not() -> None:
    pino = parse_line(
        json.dumps({"level": 50, "msg": "query failed", "err": {"code": "ECONNREFUSED"}})
    )
    config = parse_line(json.dumps({"level": 30, "msg": "config loaded", "timeout": 30}))
    result = match([pino, config])
    assert result.counts["connection_refused"] == 1
    assert result.counts["timeout"] == 0


# -- parsing -------------------------------------------------------------------------------


def test_parse_ts_forms() -> None:
    want = datetime(2024, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    for text in (
        "2024-01-01T10:00:00.123Z",
        "2024-01-01 10:00:00,123",  # log4j
        "2024-01-01T10:00:00.123000000Z",  # docker, nanoseconds
        "2024-01-01T12:00:00.123+02:00",
        "2024-01-01T10:00:00.123+0000",
        1704103200.123,
        1704103200123,  # pino: ms
        "1704103200123000",  # journald: µs
        datetime(2024, 1, 1, 10, 0, 0, 123000),  # naive: UTC
    ):
        got = parse_ts(text)
        assert got is not None and abs(got - want) < timedelta(microseconds=2), text
        assert got.utcoffset() == timedelta(0)
    assert parse_ts("yesterday") is None
    assert parse_ts(None) is None


def test_parse_line_levels_and_fields() -> None:
    sim = parse_line(jline(at(0), "error", "validation error: x", tool="recalc", duration_ms=5))
    assert (sim.level, sim.msg, sim.ts) == ("error", "validation error: x", at(0))
    assert sim.fields == {"event": "request", "tool": "recalc", "duration_ms": 5}
    assert parse_line('{"time": 1704103200000, "level": 40, "message": "m"}').level == "warning"
    assert (
        parse_line('{"@timestamp": "2024-01-01T10:00:00Z", "severity": "WARN"}').level == "warning"
    )
    plain = parse_line("2024-01-01 10:00:00,123 ERROR [db] connection refused")
    assert plain.level == "error" and plain.ts is not None
    assert plain.msg == "ERROR [db] connection refused"
    assert parse_line("[2024-01-01T10:00:00Z] fatal: boom").level == "fatal"
    assert parse_line("2024-01-01T10:00:00Z validation error: x").level == ""  # prose, no level
    assert parse_line("2024-01-01T10:00:00Z cache level=3 ok").level == ""  # not syslog 3
    assert parse_line("2024-01-01T10:00:00Z level=warn msg=x").level == "warning"
    untimed = parse_line("    at Object.<anonymous> (/app/server.js:10:5)")
    assert untimed.ts is None and untimed.level == ""
    broken = parse_line('{"ts": "2024-01-01T10:00:00Z", "msg": "cut sh')  # a torn last line
    assert broken.ts is not None and broken.raw.startswith("{")


# -- file source ---------------------------------------------------------------------------


def test_eventlog_file_read_in_window(tmp_path: Path) -> None:
    path = tmp_path / "ggen-mcp.log"
    old = [
        jline(at(1, s), "error", "validation error: sheet name must not be empty") for s in (1, 2)
    ]
    write(path, old)
    rng = random.Random(3)
    written: dict[str, int] = {}
    before = datetime.now(UTC)
    log = EventLog(path, echo=False)
    log.write("info", "start", "ggen-mcp simulator started", mode="normal", pid=os.getpid())
    for kind, family, error_type in [
        ("invalid_input", "generic", "invalid_input"),
        ("database:timeout", "database", "timeout"),
        ("recalc_error", "generic", "recalc_error"),
    ] * 4:
        msg = error_message(rng, family, error_type, "recalc", 1500)
        log.write("error", "request", msg, tool="recalc", status="error", error_type=error_type)
        for pid in SIM_EXPECTED[kind]:
            written[pid] = written.get(pid, 0) + 1
    after = datetime.now(UTC) + timedelta(milliseconds=5)

    read = FileSource(path).read(before - timedelta(milliseconds=5), after)
    assert read.ok and not read.truncated and read.source == f"file:{path}"
    assert len(read.lines) == 13
    assert read.lines[0].fields == {"event": "start", "mode": "normal", "pid": os.getpid()}
    assert all(
        x.ts is not None and before - timedelta(seconds=1) <= x.ts <= after for x in read.lines
    )
    result = match(read.lines)
    assert {pid: n for pid, n in result.counts.items() if n} == written
    assert result.share("validation_error") == 4 / 12

    # the hand-written lines from 2024 are outside that window, and alone in theirs
    old_read = FileSource(path).read(at(0), at(2))
    assert [x.ts for x in old_read.lines] == [at(1, 1), at(1, 2)]


def test_window_is_half_open_for_json_and_plain_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mixed.log",
        [
            "preamble without a timestamp",  # before any timestamp: kept
            jline(at(0, 59.999), "error", "json before"),
            jline(at(1), "error", "json at start"),
            "2024-03-05 10:01:30 ERROR plain inside",
            "    at handler (/app/server.js:10:5)",  # continuation of an inside line: kept
            "2024-03-05T10:01:45.500Z WARN plain iso inside",
            jline(at(2), "error", "json at end"),
            "    at other (/app/server.js:20:5)",  # continuation of an outside line: dropped
            "2024-03-05 10:03:00 ERROR plain after",
            "",
        ],
    )
    read = FileSource(path).read(at(1), at(2))
    assert [x.msg for x in read.lines] == [
        "preamble without a timestamp",
        "json at start",
        "ERROR plain inside",
        "at handler (/app/server.js:10:5)",
        "WARN plain iso inside",
    ]
    assert [x.level for x in read.lines] == ["", "error", "error", "", "warning"]
    # naive bounds are UTC
    naive = FileSource(path).read(at(1).replace(tzinfo=None), at(2).replace(tzinfo=None))
    assert naive.lines == read.lines


def test_ordered_stops_at_window_end(tmp_path: Path) -> None:
    lines = [jline(at(0, s), "info", f"line {s}") for s in range(0, 60, 10)]
    lines.append(jline(at(0, 5), "info", "late writer"))  # out of order, inside the window
    path = write(tmp_path / "app.log", lines)
    assert "late writer" in [x.msg for x in FileSource(path).read(at(0), at(0, 30)).lines]
    ordered = FileSource(path, ordered=True).read(at(0), at(0, 30))
    assert [x.msg for x in ordered.lines] == ["line 0", "line 10", "line 20"]

    # proof it stops reading: a .gz torn after the window errors only for a full scan
    data = gzip.compress("".join(x + "\n" for x in lines * 200).encode())
    torn = tmp_path / "app.log.1.gz"
    torn.write_bytes(data[: len(data) // 2])
    full = FileSource(torn).read(at(0), at(0, 30))
    assert full.error is not None and str(torn) in full.error and full.lines  # partial + why
    early = FileSource(torn, ordered=True).read(at(0), at(0, 30))
    assert early.ok and len(early.lines) == 3


def test_missing_and_unreadable_files_are_errors_not_exceptions(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ggen-mcp.log"
    read = FileSource(missing).read(at(0), at(5))
    assert read.lines == () and not read.ok
    assert str(missing) in read.error and "No such file" in read.error
    directory = FileSource(tmp_path).read(at(0), at(5))
    assert str(tmp_path) in directory.error
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path / "locked.log", ["x"])
        locked.chmod(0)
        assert "ermission" in FileSource(locked).read(at(0), at(5)).error


def test_source_for() -> None:
    assert source_for("file:/var/log/ggen.log") == FileSource(Path("/var/log/ggen.log"))
    assert source_for("file:///var/log/ggen.log") == FileSource(Path("/var/log/ggen.log"))
    assert source_for("/var/log/ggen.log") == FileSource(Path("/var/log/ggen.log"))
    assert source_for("relative/ggen.log") == FileSource(Path("relative/ggen.log"))
    assert source_for("container:ggen-mcp-server") == ContainerSource("ggen-mcp-server")
    assert source_for("docker:ggen-mcp-server") == ContainerSource("ggen-mcp-server")
    assert source_for("journal:ggen-mcp") == JournalSource("ggen-mcp")
    assert source_for("journal:ggen-mcp").description == "journal:ggen-mcp"


# -- a big file ----------------------------------------------------------------------------

BIG_STEP = timedelta(milliseconds=10)
BIG_LINES = 400_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~50 MB of simulator-shaped lines, one every 10 ms from T0 (about 67 minutes)."""
    path = tmp_path_factory.mktemp("big") / "ggen-mcp.log"
    tail = '", "level": "info", "event": "request", "msg": "read_table ok", "tool": "read_table", '
    with path.open("w", encoding="utf-8") as fh:
        for chunk in range(0, BIG_LINES, 10_000):
            rows = []
            for i in range(chunk, chunk + 10_000):
                stamp = (T0 + i * BIG_STEP).isoformat(timespec="milliseconds")[:23]
                rows.append(
                    f'{{"ts": "{stamp}Z{tail}"status": "success", "duration_ms": {i % 997}}}\n'
                )
            fh.write("".join(rows))
    assert path.stat().st_size > 50_000_000
    return path


READ_IN_CHILD = """
import json, resource, sys, time
from datetime import datetime
from pathlib import Path
from runbook_lib.evidence.logs import FileSource
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
read = FileSource(Path(sys.argv[1])).read(datetime.fromisoformat(sys.argv[2]),
                                          datetime.fromisoformat(sys.argv[3]))
print(json.dumps({
    "seconds": time.monotonic() - started,
    "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
    "n": len(read.lines), "error": read.error, "truncated": read.truncated,
    "first": read.lines[0].ts.isoformat(), "last": read.lines[-1].ts.isoformat(),
}))
"""


def test_big_file_narrow_window_is_exact_quick_and_streamed(big_log: Path) -> None:
    """In a fresh process, so its peak memory shows whether the file was loaded whole."""
    argv = [
        sys.executable,
        "-c",
        READ_IN_CHILD,
        str(big_log),
        at(20).isoformat(),
        at(21).isoformat(),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1]
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["error"] is None and not got["truncated"]
    assert got["n"] == 6000  # 60 s / 10 ms
    assert (got["first"], got["last"]) == (at(20).isoformat(), (at(21) - BIG_STEP).isoformat())
    assert got["seconds"] < 8, f"scanning 50 MB took {got['seconds']:.1f}s"
    assert got["grew_kb"] < 25_000, f"peak memory grew {got['grew_kb']} kB reading 50 MB"


def test_big_file_limit_truncates(big_log: Path) -> None:
    started = time.monotonic()
    read = FileSource(big_log).read(at(10), at(60), limit=1000)
    assert time.monotonic() - started < 3  # stops once the limit is passed
    assert read.ok and read.truncated and len(read.lines) == 1000
    assert read.lines[0].ts == at(10) and read.lines[-1].ts == at(10) + 999 * BIG_STEP
    whole = FileSource(big_log, ordered=True).read(at(10), at(10, 10), limit=1000)
    assert len(whole.lines) == 1000 and not whole.truncated  # exactly the limit is not truncated


# -- matching ------------------------------------------------------------------------------


def test_counts_per_minute(tmp_path: Path) -> None:
    path = write(
        tmp_path / "app.log",
        [
            "validation error: no timestamp at all",
            jline(at(0, 30), "info", "ggen-mcp simulator started"),
            jline(at(1, 5), "error", "validation error: sheet name must not be empty (recalc)"),
            jline(at(1, 20), "error", "validation error: field 'range' (read_table)"),
            "2024-03-05 10:01:59.999 ERROR validation error: plain text line",
            jline(at(2, 0), "error", "validation error: sheet name must not be empty (recalc)"),
            jline(at(2, 30), "error", "validation error: x"),
            jline(at(2, 45), "error", "database connection timeout after 5000ms (read_table)"),
            jline(at(4, 1), "warning", "slow query: SELECT 1 took 1200ms"),
        ],
    )
    read = FileSource(path).read(at(0), at(10))
    result = match(read.lines)
    pm = result.per_minute
    assert list(pm.index) == [pd.Timestamp(at(m)) for m in (0, 1, 2, 4)]  # minutes with lines
    assert pm.index.name == "minute" and str(pm.index.tz) == "UTC"
    assert list(pm.columns) == list(PATTERNS)
    assert pm["validation_error"].tolist() == [0, 3, 2, 0]
    assert pm["db_timeout"].tolist() == [0, 0, 1, 0]
    assert pm["timeout"].tolist() == [0, 0, 1, 0]
    assert pm["slow_query"].tolist() == [0, 0, 0, 1]
    assert result.counts["validation_error"] == 6  # the untimed one counts, in no minute
    assert (result.total, result.untimed) == (9, 1)
    assert result.levels == {"": 1, "info": 1, "error": 6, "warning": 1}


def test_empty_input() -> None:
    result = match([])
    assert result.total == 0 and result.per_minute.empty
    assert list(result.per_minute.columns) == list(PATTERNS)
    assert math.isnan(result.share("validation_error"))


def test_share_is_exact() -> None:
    lines = (
        [LogLine(at(0), "error", "validation error: bad range") for _ in range(81)]
        + [LogLine(at(0), "error", "database connection timeout after 10ms") for _ in range(18)]
        + [LogLine(at(0), "fatal", "FATAL: unhandled exception; process exiting")]
        + [LogLine(at(0), "warning", "validation error: retried") for _ in range(7)]
        + [LogLine(at(0), "info", "read_table ok") for _ in range(50)]
    )
    result = match(lines)
    assert result.counts["validation_error"] == 88
    assert result.share("validation_error") == 81 / 100
    assert result.share("validation_error", among={"error"}) == 81 / 99
    assert result.share("validation_error", among={"warning", "error"}) == 88 / 106
    assert result.share("validation_error", among={"WARN"}) == 1.0  # aliases normalised
    assert result.share("fatal") == 1 / 100
    assert result.table().loc["validation_error", "error_share"] == 0.81
    with pytest.raises(KeyError):
        result.share("no_such_pattern")


SECRETS = [
    # (line, secret that must vanish, what must stay)
    (
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "eyJhbGci",
        "Authorization: Bearer [REDACTED]",
    ),
    ("authorization=Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "authorization=Basic [REDACTED]"),
    ("GET /render?token=tok123abc&page=2", "tok123abc", "token=[REDACTED]&page=2"),
    ("refresh access_token=at-998877", "at-998877", "access_token=[REDACTED]"),
    ("api_key=ak-55667788", "ak-55667788", "api_key=[REDACTED]"),
    ("apikey=ak-11223344 retry", "ak-11223344", "apikey=[REDACTED] retry"),
    ("X-API-Key: xk-424242", "xk-424242", "X-API-Key: [REDACTED]"),
    ("login password=hunter2 user=bob", "hunter2", "password=[REDACTED] user=bob"),
    ("passwd=pa55w0rd", "pa55w0rd", "passwd=[REDACTED]"),
    ("pwd: letmein", "letmein", "pwd: [REDACTED]"),
    ("secret=s3cr3t-value", "s3cr3t-value", "secret=[REDACTED]"),
    ("client_secret='cs-0099'", "cs-0099", "client_secret='[REDACTED]'"),
    ("aws key AKIAIOSFODNN7EXAMPLE used", "IOSFODNN7EXAMPLE", "AKIA[REDACTED] used"),
    ("charge with sk_live_4f9a8b7c6d5e", "4f9a8b7c6d5e", "sk_live_[REDACTED]"),
    ("test sk_test_51Habc99", "51Habc99", "sk_test_[REDACTED]"),
    (
        "db postgres://ggen:hunter3@db:5432/ggen",
        "hunter3",
        "postgres://ggen:[REDACTED]@db:5432/ggen",
    ),
    (
        "https://admin:pw-777@api.example.com/x",
        "pw-777",
        "https://admin:[REDACTED]@api.example.com/x",
    ),
]


@pytest.mark.parametrize(("line", "secret", "kept"), SECRETS)
def test_redact_each_secret_form(line: str, secret: str, kept: str) -> None:
    out = redact(line)
    assert secret not in out and kept in out


def test_redact_leaves_non_secrets() -> None:
    for text in (
        "max_tokens=100 token_count=5",
        "SyntaxError: Unexpected token } in JSON",
        "cache miss workbook=wb-12 key=k1",
        "http://example.com:8080/a@b",
        "validation error: field 'range' must be A1 notation",
    ):
        assert redact(text) == text


def test_samples_are_redacted_json_keys_kept(tmp_path: Path) -> None:
    rows = [
        jline(at(0, i), "error", f"validation error: {line}")
        for i, (line, _, _) in enumerate(SECRETS)
    ]
    rows.append(
        jline(
            at(1),
            "error",
            "validation error: login",
            password="hunter4",
            apiKey="ak-json-1",
            token="tok-json-2",
            db={"secret": "nested-3"},
        )
    )
    rng = random.Random(1)
    sim = error_message(rng, "third_party", "unknown", "screenshot", 10)
    while "api_key" not in sim:
        sim = error_message(rng, "third_party", "unknown", "screenshot", 10)
    rows.append(jline(at(2), "error", sim))
    read = FileSource(write(tmp_path / "secrets.log", rows)).read(at(0), at(5))
    result = match(read.lines, samples=100)
    samples = result.samples["validation_error"]
    assert len(samples) == len(SECRETS) + 1
    assert len(match(read.lines).samples["validation_error"]) == 3  # default N
    for sample, (_, secret, kept) in zip(samples, SECRETS, strict=False):
        assert secret not in sample and kept in sample.replace('\\"', '"')
    last = samples[-1]
    for secret in ("hunter4", "ak-json-1", "tok-json-2", "nested-3"):
        assert secret not in last
    for key in (
        '"password": "[REDACTED]"',
        '"apiKey": "[REDACTED]"',
        '"token": "[REDACTED]"',
        '"secret": "[REDACTED]"',
    ):
        assert key in last
    (http,) = result.samples["http_5xx"]
    assert "sk_live_4f9a8b7c6d5e" not in http and "api_key=[REDACTED]" in http


# -- journal -------------------------------------------------------------------------------


def fake_exe(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl not installed")
def test_real_journalctl_with_bogus_unit_does_not_raise() -> None:
    read = JournalSource("runbook-no-such-unit-7f3a", timeout=20).read(at(0), datetime.now(UTC))
    assert read.lines == () or read.error is not None
    assert read.source == "journal:runbook-no-such-unit-7f3a"


def test_missing_journalctl_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no journalctl on PATH
    read = JournalSource("ggen-mcp").read(at(0), at(5))
    assert read.lines == () and "journalctl not found" in read.error
    assert "journal:ggen-mcp" in read.error


def test_journal_entries_parsed_from_a_real_process(tmp_path: Path) -> None:
    def entry(seconds: int, priority: str, message: object, **extra: str) -> dict:
        us = int(at(1, seconds).timestamp() * 1e6)
        return {"__REALTIME_TIMESTAMP": str(us), "PRIORITY": priority, "MESSAGE": message, **extra}

    entries = [
        entry(0, "6", jline(at(1), "error", "validation error: x"), _PID="7"),
        entry(1, "3", "EMFILE: Too many open files"),
        entry(2, "2", list(b"Killed")),  # journald's form of a non-UTF-8 message
        entry(600, "6", "after the window"),
    ]
    dump = tmp_path / "entries.json"
    dump.write_text("".join(json.dumps(e) + "\n" for e in entries))
    args = tmp_path / "args"
    exe = fake_exe(tmp_path / "journalctl", f'printf "%s\\n" "$@" > {args}\ncat {dump}\n')
    read = JournalSource("ggen-mcp", journalctl=str(exe)).read(at(0), at(5))
    assert read.ok, read.error
    assert [(x.level, x.msg) for x in read.lines] == [
        ("error", "validation error: x"),
        ("error", "EMFILE: Too many open files"),
        ("critical", "Killed"),
    ]
    assert read.lines[0].fields["_PID"] == "7" and read.lines[1].ts == at(1, 1)
    called = args.read_text().split("\n")
    assert called[:2] == ["-u", "ggen-mcp"] and "--no-pager" in called
    assert f"--since=@{int(at(0).timestamp())}" in called
    assert f"--until=@{int(at(5).timestamp())}" in called
    assert set(match(read.lines).counts.items()) >= {("oom_killed", 1), ("validation_error", 1)}

    limited = JournalSource("ggen-mcp", journalctl=str(exe)).read(at(0), at(5), limit=2)
    assert limited.ok and limited.truncated and len(limited.lines) == 2


def test_journal_failure_and_timeout_are_errors(tmp_path: Path) -> None:
    failing = fake_exe(tmp_path / "jfail", 'echo "Failed to add filter: bad unit" >&2\nexit 1\n')
    read = JournalSource("x", journalctl=str(failing)).read(at(0), at(5))
    assert read.lines == () and "exited 1" in read.error and "bad unit" in read.error
    empty = fake_exe(tmp_path / "jempty", 'echo "No journal files were found." >&2\n')
    nothing = JournalSource("x", journalctl=str(empty)).read(at(0), at(5))
    assert nothing.lines == () and nothing.error == "journal:x: No journal files were found."
    hanging = fake_exe(tmp_path / "jhang", "exec sleep 30\n")
    started = time.monotonic()
    slow = JournalSource("x", timeout=0.5, journalctl=str(hanging)).read(at(0), at(5))
    assert time.monotonic() - started < 5
    assert "timed out" in slow.error and slow.truncated


# -- containers ----------------------------------------------------------------------------


def test_container_without_containers_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "runbook_lib.evidence.containers", None)  # import now fails
    read = ContainerSource("ggen-mcp-server").read(at(0), at(5))
    assert read.lines == () and "container logs unavailable" in read.error
    assert "container:ggen-mcp-server" in read.error


def test_container_module_without_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "runbook_lib.evidence.containers", types.ModuleType("stub"))
    read = ContainerSource("ggen-mcp-server").read(at(0), at(5))
    assert "container logs unavailable" in read.error


def test_real_container_lookup_of_a_missing_container_is_an_error() -> None:
    """Through the real runbook_lib.evidence.containers (if present) and Docker (if reachable)."""
    read = ContainerSource("runbook-no-such-container-7f3a").read(at(0), datetime.now(UTC))
    assert read.lines == () and read.error is not None
    assert read.error.startswith("container:runbook-no-such-container-7f3a")


def test_container_line_shapes_window_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    class Named(tuple):  # like containers.LogLine: (timestamp, stream, text) with attributes
        timestamp = property(lambda self: self[0])
        stream = property(lambda self: self[1])
        text = property(lambda self: self[2])

    class Obj:
        def __init__(self, ts: datetime, text: str) -> None:
            self.ts, self.text = ts, text

    calls: list[dict] = []

    def logs_stub(name: str, **kw: object) -> types.SimpleNamespace:
        calls.append({"name": name, **kw})
        return types.SimpleNamespace(
            lines=[
                Named((at(1), "stderr", jline(at(1), "error", "validation error: a"))),
                (at(2), "2024-03-05 10:02:00 ERROR connect ECONNREFUSED 127.0.0.1:5432"),
                Obj(at(3), "Killed"),
                (at(9), "outside the window"),
            ],
            error=None,
        )

    monkeypatch.setitem(
        sys.modules, "runbook_lib.evidence.containers", types.SimpleNamespace(logs=logs_stub)
    )
    read = ContainerSource("ggen").read(at(0), at(5), limit=10)
    assert calls == [{"name": "ggen", "since": at(0), "until": at(5), "tail": 11}]
    assert read.ok and not read.truncated
    assert [x.msg for x in read.lines] == [
        "validation error: a",
        "2024-03-05 10:02:00 ERROR connect ECONNREFUSED 127.0.0.1:5432"[20:],
        "Killed",
    ]
    assert read.lines[0].fields["stream"] == "stderr" and read.lines[2].ts == at(3)
    assert ContainerSource("ggen").read(at(0), at(5), limit=2).truncated

    def raising(name: str, **kw: object) -> None:
        raise RuntimeError("docker daemon gone")

    monkeypatch.setitem(
        sys.modules, "runbook_lib.evidence.containers", types.SimpleNamespace(logs=raising)
    )
    broken = ContainerSource("ggen").read(at(0), at(5))
    assert "docker daemon gone" in broken.error and broken.lines == ()


# -- cache keys ----------------------------------------------------------------------------


def test_cache_key_stats_tells_poor_keys_from_variance() -> None:
    rng = random.Random(5)
    poor = [
        parse_line(jline(at(0, i), "info", f"cache miss workbook=wb-12 key=k{rng.randrange(5)}"))
        for i in range(40)
    ]
    poor += [
        parse_line(jline(at(0), "info", f"cache miss workbook=wb-12 key=k{i}")) for i in range(5)
    ]
    poor.append(
        parse_line(jline(at(0), "info", "cache evict workbook=wb-99 key=z reason=capacity"))
    )
    stats = cache_key_stats(poor)
    assert stats["misses"] == 45 and stats["identified"] == 45
    assert (stats["workbooks"], stats["keys"], stats["keys_per_workbook"]) == (1, 5, 5.0)

    variance = [
        parse_line(
            json.dumps(
                {
                    "ts": iso(at(1)),
                    "level": "info",
                    "msg": "cache miss",
                    "workbook": f"wb-{i}",
                    "key": f"sha:{i:04x}",
                }
            )
        )
        for i in range(50)
    ]
    variance.append(parse_line(jline(at(1), "info", "cache miss (no ids)")))
    stats = cache_key_stats(variance)
    assert stats["misses"] == 51 and stats["identified"] == 50
    assert (stats["workbooks"], stats["keys"], stats["keys_per_workbook"]) == (50, 50, 1.0)
    assert stats["max_keys_per_workbook"] == 1
    # key names shared across workbooks: per-workbook distinct keys, not global ones
    shared = [
        parse_line(f"2024-03-05 10:00:00 cache miss workbook=wb-{w} key=k{k}")
        for w in range(10)
        for k in range(3)
    ]
    stats = cache_key_stats(shared)
    assert (stats["workbooks"], stats["keys"], stats["keys_per_workbook"]) == (10, 3, 3.0)
    assert math.isnan(cache_key_stats([])["keys_per_workbook"])
    assert logs.PATTERNS["cache_miss"].search("cache miss workbook=wb-1 key=k")


def test_the_logs_step_shows_each_pattern_as_a_row_and_its_share_in_percent() -> None:
    from runbook_lib.notebook.steps import _matched

    found = pd.DataFrame(
        {
            "pattern": ["validation_error", "parse_error"],
            "count": [147, 46],
            "error_share": [0.761658, 0.238342],
            "symptom": ["a", "b"],
        }  # fmt: skip
    ).set_index("pattern")
    shown = _matched(found)
    assert list(shown.columns) == ["pattern", "count", "% of error lines", "symptom"]
    assert shown.to_dict("records") == [
        {"pattern": "validation_error", "count": 147, "% of error lines": 76.2, "symptom": "a"},
        {"pattern": "parse_error", "count": 46, "% of error lines": 23.8, "symptom": "b"},
    ]
