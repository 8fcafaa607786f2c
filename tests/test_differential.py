"""The differential diagnosis on hand-made evidence: how each family's symptom splits among
its causes, the cap on a cause another explains, contributing causes, and unknown (never
ruled out) when a series is missing. Every figure below was worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.diagnosis.engine import differentiate, top_causes
from runbook_lib.diagnosis.model import Evidence, Verdict
from runbook_lib.evidence.panels import Scope
from runbook_lib.evidence.signals import Signals, _derive
from runbook_lib.notebook.display import answer_md
from tests.conftest import summary_of

T0 = pd.Timestamp("2026-01-15 09:00", tz="UTC")


def by_cause(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.cause: v for v in verdicts}


# ------------------------------------------------------------------ latency
def latency_signals(**extra: object) -> Signals:
    """Only the database-backed tools got slower (by 13.73 s and 13.39 s); the others answer
    as fast as an hour before."""
    before = {
        "read_table": 0.27,
        "list_workbooks": 0.11,
        "recalc": 1.8,
        "screenshot": 2.5,
        "render_template": 0.7,
    }
    now = {**before, "read_table": 14.0, "list_workbooks": 13.5}
    values = {
        "p95_by_tool": now,
        "p95_by_tool_before": before,
        "requests_by_tool": {
            "read_table": 7.0,
            "list_workbooks": 5.0,
            "recalc": 3.0,
            "screenshot": 2.0,
            "render_template": 2.0,
        },
        "cpu": 1.2,
        "memory_percent": 35.0,
        "cache_hit_rate": 85.0,
        "evictions_per_miss": 0.0,
        "query_p95": 9.0,
        "recalc_p95": 1.6,
        "screenshot_p95": 2.2,
        "slow_query_rate": 10.0,
    }
    values.update(extra)
    return Signals(values=values)


def test_a_busy_cpu_does_not_explain_latency_that_only_one_stage_has() -> None:
    verdicts = diagnosis.diagnose("high_latency", Evidence(latency_signals()))
    v = by_cause(verdicts)
    # 7/19 * 13.73 + 5/19 * 13.39 = 5.058 + 3.524 = 8.58 s added to the average request
    assert verdicts[0].cause == "slow_database_queries"
    assert v["slow_database_queries"].explained_share == 1.0
    assert v["cpu_saturation"].explained_share == 0.0
    assert v["cpu_saturation"].verdict == "possible"  # its own sign (1.2 cores) holds
    assert any(": 0.00 of the 8.58 s" in e for e in v["cpu_saturation"].evidence)
    assert any(
        "the database stage (the tools that use it: list_workbooks, read_table): 8.58" in e
        for e in v["slow_database_queries"].evidence
    )


def test_a_slowdown_every_tool_shares_is_the_cpus() -> None:
    before = latency_signals().values["p95_by_tool_before"]
    now = {t: p * 30 for t, p in before.items()}  # every tool 30 times slower
    ev = Evidence(latency_signals(p95_by_tool=now, query_p95=6.0, recalc_p95=40.0))
    v = by_cause(diagnosis.diagnose("high_latency", ev))
    assert v["cpu_saturation"].explained_share == 1.0
    assert v["cpu_saturation"].verdict == "likely"
    # the stages look slow too, but explain nothing beyond the shared slowdown
    assert v["slow_database_queries"].explained_share == 0.0
    assert v["libreoffice_bottleneck"].explained_share == 0.0


def test_no_latency_added_means_no_attribution() -> None:
    before = latency_signals().values["p95_by_tool_before"]
    ev = Evidence(latency_signals(p95_by_tool=dict(before)))
    verdicts = diagnosis.diagnose("high_latency", ev)
    assert ev.attribution is None
    assert all(v.explained_share is None for v in verdicts)


# ------------------------------------------------------------------ memory
def memory_evidence(leak_bytes: float) -> Evidence:
    """An hour at 15 s: flat for 5 min, then the cache grows by 2.0 GB (and the heap by
    `leak_bytes`) linearly, then flat for 5 min."""
    n = 241
    times = [T0 + pd.Timedelta(seconds=15 * i) for i in range(n)]
    ramp = np.clip((np.arange(n) - 20) / 200, 0, 1)
    cache = 0.2e9 + 2.0e9 * ramp
    rss = 1.4e9 + (cache - 0.2e9) + leak_bytes * ramp
    sig = Signals(
        values={
            "memory_series": pd.DataFrame({"timestamp": times, "value": rss}),
            "cache_memory_series": pd.DataFrame({"timestamp": times, "value": cache}),
            "libreoffice_series": pd.DataFrame({"timestamp": times, "value": 2.0}),
            "cache_memory_share": cache[-1] / rss[-1],
            "cache_size": 2500.0,
            "libreoffice": 2.0,
        }
    )
    _derive(sig, Scope("x"), 15)
    return Evidence(sig)


def test_memory_the_cache_grew_is_not_a_leak() -> None:
    ev = memory_evidence(leak_bytes=0.0)
    v = by_cause(diagnosis.diagnose("memory", ev))
    assert v["cache_too_large"].verdict == "likely"
    assert v["cache_too_large"].explained_share == 1.0
    assert any(
        "the cache's growth: 2.0 of the 2.0 GB of resident memory gained" in e
        for e in v["cache_too_large"].evidence
    )
    # steady growth, no plateau: alone, the leak rule would say likely
    assert v["memory_leak"].explained_share == 0.0
    assert v["memory_leak"].verdict != "likely"
    assert diagnosis.summary(diagnosis.diagnose("memory", ev))[1] == "cache_too_large"


def test_memory_a_leak_beside_a_growing_cache_contributes() -> None:
    ev = memory_evidence(leak_bytes=1.0e9)
    verdicts = diagnosis.diagnose("memory", ev)
    tops = top_causes(verdicts)
    # gained 3.0 GB: the cache 2.0 of it, the remainder 1.0 climbs steadily: a leak
    assert [(t["cause"], t["explained_share"]) for t in tops] == [
        ("cache_too_large", 0.667),
        ("memory_leak", 0.333),
    ]
    assert answer_md(verdicts, ev.attribution) == (
        "**Top causes, together explaining 100% of the symptom: "
        "Cache too large (67% of the symptom), Memory leak (33% of the symptom).**"
    )
    assert ev.attribution.as_dict()["parts"] == {"memory_leak": 1.0, "cache_too_large": 2.0}


def test_memory_without_the_cache_series_the_leak_is_not_judged() -> None:
    ev = memory_evidence(leak_bytes=0.0)
    del ev.signals.values["cache_memory_series"]
    ev.signals.missing["cache_memory_series"] = "no_data: the query returned no series"
    ev.signals.series["cache_memory_series"] = ("ggen_mcp_cache_memory_bytes",)
    v = by_cause(diagnosis.diagnose("memory", ev))
    assert v["cache_too_large"].explained_share is None
    assert v["memory_leak"].explained_share is None  # a remainder of what, without the cache?
    assert any("ggen_mcp_cache_memory_bytes" in n for n in ev.attribution.notes)


# ------------------------------------------------------------------ errors
def test_errors_each_cause_claims_its_types_on_the_tools_it_reaches() -> None:
    by_tool_type = {
        "recalc|unknown": 30.0,
        "screenshot|timeout": 60.0,
        "render_template|unknown": 20.0,
        "read_table|not_found": 1.0,
    }
    sig = Signals(
        values={
            "errors_by_tool_type": by_tool_type,
            "errors_by_type": {"unknown": 50.0, "timeout": 60.0, "not_found": 1.0},
            "errors_by_tool": {
                "recalc": 30.0,
                "screenshot": 60.0,
                "render_template": 20.0,
                "read_table": 1.0,
            },
            "health": {"database": 0.0, "external_api": 0.0, "libreoffice": 1.0},
        }
    )
    v = by_cause(diagnosis.diagnose("high_error_rate", Evidence(sig)))
    # timeouts of the screenshot tool cannot be the database's: 110 of 111 are third-party
    assert v["third_party_api"].explained_share == round(110 / 111, 3)
    assert v["database_connection"].explained_share == 0.0
    assert any(
        ": 0 of the 111 errors in the last 15m" in e for e in v["database_connection"].evidence
    )
    assert v["database_connection"].verdict != "likely"


# ------------------------------------------------------------------ processes, disk
def test_processes_split_by_what_keeps_them() -> None:
    procs = (
        [
            {
                "pid": 10 + i,
                "ppid": 4242,
                "name": "soffice",
                "status": "zombie",
                "age_s": 900,
                "cpu_seconds": 0.0,
                "rss_bytes": 0,
            }
            for i in range(16)
        ]
        + [
            {
                "pid": 50 + i,
                "ppid": 1,
                "name": "soffice",
                "status": "sleeping",
                "age_s": 900,
                "cpu_seconds": 3.0,
                "rss_bytes": 8e7,
            }
            for i in range(3)
        ]
        + [
            {
                "pid": 99,
                "ppid": 4242,
                "name": "soffice",
                "status": "running",
                "age_s": 30,
                "cpu_seconds": 2.0,
                "rss_bytes": 8e7,
            }
        ]
    )
    ev = Evidence(
        Signals(values={"libreoffice": 20.0}), host={"service_pid": 4242, "processes": procs}
    )
    verdicts = diagnosis.diagnose("libreoffice_leak", ev)
    v = by_cause(verdicts)
    assert verdicts[0].cause == "zombie_processes"
    assert v["zombie_processes"].explained_share == 0.8  # 16 of 20
    assert v["orphaned_processes"].explained_share == 0.15  # 3 of 20
    assert v["hung_processes"].explained_share == 0.0


def test_disk_growth_splits_by_directory() -> None:
    host = {
        "dir_growth_bytes_per_h": {
            "/var/log/ggen-mcp": 3.0e9,
            "/var/lib/prometheus": 1.0e9,
            "/tmp": 0.0,
        },
        "dirs": {"/var/log/ggen-mcp": 9e9, "/var/lib/prometheus": 7e9, "/tmp": 1e9},
    }
    v = by_cause(diagnosis.diagnose("disk_usage", Evidence(Signals(), host=host)))
    assert v["log_files_growing"].explained_share == 0.75
    assert v["prometheus_data_growing"].explained_share == 0.25
    assert any(
        "/var/log/ggen-mcp: 3.00 of the 4.00 GB/h the disk grows by" in e
        for e in v["log_files_growing"].evidence
    )


# ------------------------------------------------------------------ the differential itself
def verdicts_for(att: Attribution) -> list[Verdict]:
    return [Verdict(c, "likely", 1.0, ["✔ its own sign"]) for c in ("a", "b")]


def test_a_likely_cause_another_mostly_explains_is_at_most_possible() -> None:
    att = Attribution("x", "units of symptom", 10.0, ("a", "b"))
    att.claim("a", 8.0, "part A")
    att.claim("b", 1.0, "part B")
    vs = verdicts_for(att)
    differentiate(vs, att)
    a, b = vs
    assert (a.verdict, a.explained_share) == ("likely", 0.8)
    assert (b.verdict, b.explained_share, b.score) == ("possible", 0.1, 0.69)
    assert b.evidence[-1] == "✘ a explains 80% of it, this cause 10%: at most possible"
    assert top_causes(vs) == [{"cause": "a", "explained_share": 0.8, "score": 1.0}]


def test_two_causes_that_both_explain_a_real_part_are_both_top() -> None:
    att = Attribution("x", "units of symptom", 10.0, ("a", "b"))
    att.claim("a", 3.0, "part A")
    att.claim("b", 6.0, "part B")
    vs = verdicts_for(att)
    differentiate(vs, att)
    vs.sort(key=lambda v: -(v.explained_share or 0))
    assert [(v.cause, v.verdict) for v in vs] == [("b", "likely"), ("a", "likely")]
    assert [t["cause"] for t in top_causes(vs)] == ["b", "a"]
    assert att.unexplained == 1.0


def test_ties_are_broken_by_share_not_by_name() -> None:
    ev = Evidence(latency_signals())
    verdicts = diagnosis.diagnose("high_latency", ev)
    # cpu_saturation sorts first by name, and its rule alone scores its sign at 1.0
    assert verdicts[0].cause == "slow_database_queries"


# ------------------------------------------------------------------ unknown is not ruled out
@pytest.mark.parametrize(
    ("runbook", "cause", "signal", "series"),
    [
        (
            "cache_hit_rate",
            "cache_too_small",
            "evictions_per_miss",
            "ggen_mcp_cache_evictions_total",
        ),
        ("high_latency", "cpu_saturation", "cpu", "process_cpu_seconds_total"),
        ("high_latency", "slow_database_queries", "query_p95", "ggen_mcp_query_duration_seconds"),
    ],
)
def test_a_missing_series_makes_its_cause_unknown_and_names_it(
    runbook: str, cause: str, signal: str, series: str
) -> None:
    sig = latency_signals(
        cache_hit_rate=20.0, evictions_per_miss=0.9, cache_size_cv=0.0, cache_misses=500.0
    )
    sig.values.pop(signal)
    sig.missing[signal] = "no_data: the query returned no series"
    sig.series[signal] = (series,)
    v = by_cause(diagnosis.diagnose(runbook, Evidence(sig)))[cause]
    assert v.verdict == "unknown" and v.explained_share is None
    gaps = diagnosis.unknown_gaps([v])
    assert gaps and all(series in g for g in gaps)


def test_the_chart_shows_one_segment_per_part_and_what_is_unexplained() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from runbook_lib.notebook import charts

    att = {
        "total": 2.0,
        "of_what": "GB of resident memory gained over the last hour",
        "parts": {"memory_leak": 0.7, "cache_too_large": 1.1},
        "unexplained": 0.2,
    }
    fig = charts.attribution(att, None)
    bars = fig.axes[1]
    legend = [t.get_text() for t in bars.get_legend().get_texts()]
    assert legend == ["Cache too large 55%", "Memory leak 35%", "unexplained 10%"]
    widths = [round(p.get_width(), 2) for p in bars.patches]
    assert widths == [1.1, 0.7, 0.2]
    assert "GB of resident memory gained" in bars.get_xlabel()


def test_runbook_summary_says_which_causes_contribute_together(tmp_path, capsys) -> None:

    from runbook_lib import cli

    summary = {
        "alert": "GgenMcpMemoryCritical",
        "severity": "critical",
        "runbook": "memory",
        "status": "completed",
        "top_cause": "cache_too_large",
        "top_causes": [
            {"cause": "cache_too_large", "explained_share": 0.56, "score": 1.0},
            {"cause": "memory_leak", "explained_share": 0.44, "score": 0.85},
        ],
        "diagnosis": [
            {
                "cause": "cache_too_large",
                "verdict": "likely",
                "score": 1.0,
                "evidence": [],
                "missing": [],
                "explained_share": 0.56,
            },
            {
                "cause": "large_payloads",
                "verdict": "unknown",
                "score": 0.0,
                "evidence": [],
                "missing": [],
                "explained_share": None,
            },
        ],
        "data_gaps": [],
    }
    summary_of(summary).write(tmp_path / "summary.json")
    assert cli.main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "top cause: cache_too_large (56%) + memory_leak (44%), contributing together" in out
    assert "likely    1.00 cache_too_large  explains 56%" in out
    assert "unknown   0.00 large_payloads\n" in out  # no share: nothing claimed, nothing said


def test_a_tool_with_little_traffic_does_not_hide_a_shared_slowdown() -> None:
    before = latency_signals().values["p95_by_tool_before"]
    now = {t: p * 3 for t, p in before.items()}
    before = {**before, "fork_workbook": 0.9}
    now = {**now, "fork_workbook": 0.9}  # unchanged, but 0.05 of 19.05 req/s
    rates = {**latency_signals().values["requests_by_tool"], "fork_workbook": 0.05}
    ev = Evidence(latency_signals(p95_by_tool=now, p95_by_tool_before=before,
                                  requests_by_tool=rates, recalc_p95=5.5))  # fmt: skip
    v = by_cause(diagnosis.diagnose("high_latency", ev))
    assert v["cpu_saturation"].explained_share == 1.0 and v["cpu_saturation"].verdict == "likely"
    assert v["libreoffice_bottleneck"].explained_share == 0.0


def test_a_steady_leak_under_memory_spikes_is_still_a_leak() -> None:
    n = 241
    times = [T0 + pd.Timedelta(seconds=15 * i) for i in range(n)]
    leak = 1.4e9 + 0.8e9 * np.arange(n) / (n - 1)  # +0.8 GB over the hour, steadily
    spikes = np.where(np.arange(n) % 7 == 3, 1.2e9, 0.0)  # a large request every 105 s
    sig = Signals(
        values={
            "memory_series": pd.DataFrame({"timestamp": times, "value": leak + spikes}),
            "cache_memory_series": pd.DataFrame({"timestamp": times, "value": 0.2e9}),
            "libreoffice_series": pd.DataFrame({"timestamp": times, "value": 2.0}),
            "cache_memory_share": 0.1,
            "libreoffice": 2.0,
        }
    )
    _derive(sig, Scope("x"), 15)
    v = by_cause(diagnosis.diagnose("memory", Evidence(sig)))
    # gained (peak 2.2 + 1.2) - 1.4 = 2.0 GB: the leak's 0.8, the spikes the other 1.2
    assert v["memory_leak"].explained_share == pytest.approx(0.4, abs=0.02)
    assert v["large_payloads"].explained_share == pytest.approx(0.6, abs=0.02)
    assert v["memory_leak"].verdict != "ruled_out"


def test_without_the_evictions_counter_the_cache_keys_are_still_judged() -> None:
    from runbook_lib.diagnosis.model import LogFacts

    sig = Signals(values={"cache_misses": 500.0, "cache_hit_rate": 30.0})
    sig.missing["evictions_per_miss"] = "no_data: the query returned no series"
    sig.series["evictions_per_miss"] = ("ggen_mcp_cache_evictions_total",)
    logs = LogFacts(
        counts={}, error_lines=0, shares={}, keys_per_workbook=25.0,
        cache_keys={"misses": 500, "identified": 500, "workbooks": 20, "keys": 500,
                    "keys_per_workbook": 25.0},
    )  # fmt: skip
    v = by_cause(diagnosis.diagnose("cache_hit_rate", Evidence(sig, logs=logs)))
    assert (
        v["cache_too_small"].verdict == "unknown" and v["cache_too_small"].explained_share is None
    )
    # 500 pairs for 20 workbooks: 480 of 500 misses are a known workbook under another key
    assert v["poor_cache_keys"].explained_share == 0.96
    assert v["poor_cache_keys"].verdict == "likely"


def test_a_ruled_out_cause_does_not_cap_the_only_likely_one() -> None:
    att = Attribution("x", "units", 10.0, ("a", "b"))
    att.claim("a", 8.0, "A")
    att.claim("b", 1.0, "B")
    vs = [Verdict("a", "ruled_out", 0.0), Verdict("b", "likely", 0.9)]
    differentiate(vs, att)
    assert vs[1].verdict == "likely"
