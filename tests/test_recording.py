"""What a record saves and what a replay answers: Prometheus's answers (a silent Prometheus
included), the log lines the run read, and nothing else; a replay writes nowhere."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from runbook_lib.evidence.prom import Failure, Prom, QueryResult
from runbook_lib.evidence.recording import Recording, Replay, client, log_source

AT = datetime(2026, 1, 15, 10, 2, tzinfo=UTC)


class Answers:
    """A stand-in for Prometheus's HTTP API (no network): fixed answers per query."""

    url = "http://prometheus.example:9090"

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames, self.asked = frames, []

    def instant(self, query: str, at: datetime) -> QueryResult:
        self.asked.append(query)
        return QueryResult(query, self.frames[query], None, "", None, ())

    def range(self, query, start, end, step=None) -> QueryResult:
        self.asked.append(query)
        return QueryResult(query, self.frames[query], None, "", 30.0, ())


def _log(path: Path) -> Path:
    lines = [
        {"ts": "2026-01-15T09:50:00Z", "level": "error", "msg": "validation error: empty name",
         "tool": "read_table"},
        {"ts": "2026-01-15T10:01:00Z", "level": "info", "msg": "request done"},
        {"ts": "2026-01-15T10:05:00Z", "level": "error", "msg": "after the window"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_a_silent_prometheus_is_saved_and_replayed_as_silent(tmp_path: Path) -> None:
    """A degraded run's record replays as degraded, naming the same address and reason."""
    rec = Recording(Prom("http://127.0.0.1:1", timeout=2), tmp_path / "data")
    said = rec.instant("up", AT)
    assert said.failure == Failure.UNREACHABLE
    again = Replay(tmp_path / "data").instant("up", AT)
    assert again.failure == Failure.UNREACHABLE and again.reason == said.reason
    assert "127.0.0.1:1" in again.reason


def test_every_record_has_its_data_directory_even_when_nothing_was_asked(tmp_path) -> None:
    Recording(Prom("http://127.0.0.1:1"), tmp_path / "data")
    assert (tmp_path / "data" / "queries.jsonl").read_text() == ""
    assert Replay(tmp_path / "data").instant("up", AT).failure == Failure.NO_DATA


def test_the_log_lines_read_are_saved_and_replayed_after_the_log_is_gone(tmp_path) -> None:
    log = _log(tmp_path / "service.log")
    rec = Recording(Answers({}), tmp_path / "data")
    start = AT - timedelta(minutes=15)
    read = log_source(rec, str(log)).read(start, AT)
    assert [x.msg for x in read.lines] == ["validation error: empty name", "request done"]
    log.unlink()  # rotated away: the record still has what the run read
    replay = Replay(tmp_path / "data")
    again = log_source(replay, str(log)).read(start, AT)
    assert again.source == f"file:{log}" and again.error is None
    assert [(x.ts, x.level, x.msg, x.fields) for x in again.lines] == [
        (datetime(2026, 1, 15, 9, 50, tzinfo=UTC), "error", "validation error: empty name",
         {"tool": "read_table"}),
        (datetime(2026, 1, 15, 10, 1, tzinfo=UTC), "info", "request done", {}),
    ]  # fmt: skip
    # a window inside the saved one: its lines; one outside it: said to be missing
    inside = log_source(replay, str(log)).read(AT - timedelta(minutes=5), AT)
    assert [x.msg for x in inside.lines] == ["request done"]
    later = log_source(replay, str(log)).read(AT, AT + timedelta(minutes=10))
    assert later.lines == () and "has no log lines for 10:02-10:12 UTC" in later.error


def test_a_line_is_saved_as_it_was_read_field_by_field(tmp_path: Path) -> None:
    """The saved line file: each line's time, level, message, fields (nested ones whole)
    and raw text, in that order; a line without a time saved with none."""
    log = tmp_path / "service.log"
    log.write_text(
        '{"ts": "2026-01-15T09:58:00Z", "level": "ERROR", "msg": "boom",'
        ' "err": {"type": "Timeout", "codes": [1, 2]}}\n'
    )
    rec = Recording(Answers({}), tmp_path / "data")
    log_source(rec, str(log)).read(AT - timedelta(minutes=15), AT)
    entry = json.loads((tmp_path / "data" / "logs.jsonl").read_text())
    saved = (tmp_path / "data" / entry["file"]).read_text()
    raw = json.dumps(log.read_text().strip())
    assert saved == (
        '{"ts": "2026-01-15T09:58:00+00:00", "level": "error", "msg": "boom", '
        '"fields": {"err": {"type": "Timeout", "codes": [1, 2]}}, "raw": ' + raw + "}\n"
    )


def test_the_same_window_is_read_once_and_saved_once(tmp_path: Path) -> None:
    log = _log(tmp_path / "service.log")
    rec = Recording(Answers({}), tmp_path / "data")
    start = AT - timedelta(minutes=15)
    first = log_source(rec, str(log)).read(start, AT)
    log.write_text("")  # a second read of the window would now find nothing
    assert log_source(rec, str(log)).read(start, AT) == first
    assert len((tmp_path / "data" / "logs.jsonl").read_text().splitlines()) == 1


def test_an_unreadable_log_is_replayed_with_its_error(tmp_path: Path) -> None:
    rec = Recording(Answers({}), tmp_path / "data")
    missing = str(tmp_path / "nowhere.log")
    read = log_source(rec, missing).read(AT - timedelta(minutes=15), AT)
    assert read.error and "nowhere.log" in read.error
    again = log_source(Replay(tmp_path / "data"), missing).read(AT - timedelta(minutes=15), AT)
    assert again.error == read.error


def test_a_replay_of_a_replay_keeps_its_own_data(tmp_path: Path) -> None:
    """A replay's record holds the answers it was given, so it replays in turn."""
    times = [pd.Timestamp("2026-01-15 10:00:00Z"), pd.Timestamp("2026-01-15 10:00:30.5Z")]
    frame = pd.DataFrame({"timestamp": times, "value": [1.0, 2.0]})
    Recording(Answers({"up": frame}), tmp_path / "first").range("up", AT, AT, 30.0)
    second = client("", replay_from=str(tmp_path / "first"), snapshot_dir=str(tmp_path / "second"))
    assert isinstance(second, Recording) and isinstance(second.prom, Replay)
    second.range("up", AT, AT, 30.0)
    third = Replay(tmp_path / "second").range("up", AT, AT, 30.0)
    # whole and fractional seconds in one saved column are read back, not refused
    assert list(third.frame["value"]) == [1.0, 2.0]
    assert str(third.frame["timestamp"].iloc[1]) == "2026-01-15 10:00:30.500000+00:00"


def test_a_replayed_answer_is_the_answer_to_the_nanosecond_and_the_last_digit(tmp_path) -> None:
    """What a chart redrawn from a record shows is what the run was answered: times with
    and without fractions of a second, labels with commas, quotes, a newline and none,
    values to their last digit."""
    times = pd.to_datetime(
        ["2026-01-15 10:00:00Z", "2026-01-15 10:00:15.25Z", "2026-01-15 10:00:30.000000001Z"],
        utc=True,
        format="ISO8601",
    )
    frame = pd.DataFrame({
        "timestamp": times,
        "tool": ['read,"table"', "ünïcode\nline", None],
        "value": [1 / 3, 1e-300, 12345678901234.5],
    })  # fmt: skip
    Recording(Answers({"q": frame}), tmp_path / "data").range("q", AT, AT, 30.0)
    saved = (tmp_path / "data" / "q0001.csv").read_text()
    assert saved.splitlines()[2].startswith("2026-01-15T10:00:15.250")
    again = Replay(tmp_path / "data").range("q", AT, AT, 30.0).frame
    assert list(again["timestamp"]) == list(times)
    assert str(again["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(again["value"]) == [1 / 3, 1e-300, 12345678901234.5]
    assert list(again["tool"]) == ['read,"table"', "ünïcode\nline", ""]


def test_an_answer_the_record_lacks_is_an_empty_typed_frame(tmp_path: Path) -> None:
    """Untyped empty frames made pandas warn (FutureWarning) when combined with answers;
    warnings in a kernel end up as text in the report."""
    Recording(Answers({}), tmp_path / "data")
    lacking = Replay(tmp_path / "data").range("rate(x[5m])", AT, AT, 30.0)
    assert lacking.failure == Failure.NO_DATA
    answer = pd.DataFrame({"timestamp": [pd.Timestamp(AT)], "value": [1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = pd.concat([lacking.frame, answer], ignore_index=True)
    assert both["value"].dtype == float and len(both) == 1


def test_replaying_needs_saved_queries(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no saved queries"):
        Replay(tmp_path)
