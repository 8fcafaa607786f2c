"""The diagnosis on every scenario of the library (two seeds each), on the healthy
baseline, without Prometheus, and with live host and container evidence."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis import investigate
from runbook_lib.diagnosis.engine import judge
from runbook_lib.diagnosis.model import Fact
from runbook_lib.evidence import host_state as host_snapshot
from runbook_lib.evidence.panels import Scope
from runbook_lib.evidence.signals import Signals
from runbook_lib.lab.ports import free_port
from runbook_lib.lab.scenarios import build
from runbook_lib.lab.scenarios.build import gather as scenario_evidence
from runbook_lib.lab.sim.faults import ProcessFaults
from tests import listed_causes
from tests.conftest import docker_engine
from tests.polling import wait_for

# docs/causes.md, the one list of the causes, written by hand: runbook -> its causes.
LISTED = listed_causes.read()
LISTED_CAUSES = listed_causes.by_runbook(LISTED)


def test_the_rules_judge_the_listed_causes() -> None:
    judged = {rb: set(cs) for rb, cs in diagnosis.RULES.items()}
    problems = listed_causes.differences(LISTED_CAUSES, judged)
    assert not problems, "\n".join(problems)


def test_every_listed_cause_has_its_scenario() -> None:
    from runbook_lib.lab.scenarios.catalog import CATALOG

    listed = {(r.runbook, r.cause) for r in LISTED}
    without = [
        f"{rb}: {c} has no scenario in catalog.py" for rb, c in sorted(listed - set(CATALOG))
    ]
    unlisted = [
        f"{rb}: {c} has a scenario but no row in docs/causes.md"
        for rb, c in sorted(set(CATALOG) - listed)
    ]
    assert not without + unlisted, "\n".join(without + unlisted)


def gather(prom_url: str, sc, tmp: Path) -> diagnosis.Evidence:
    return scenario_evidence(sc, prom_url, tmp)


def test_every_cause_is_found_first_on_its_scenarios(scenario_set, tmp_path: Path) -> None:
    prom, scenarios, _ = scenario_set
    wrong = []
    for sc in (s for s in scenarios if s.cause and not s.mix):
        verdicts = diagnosis.diagnose(sc.runbook, gather(prom.url, sc, tmp_path))
        _, top = diagnosis.summary(verdicts)
        if top != sc.cause:
            wrong.append(
                f"{sc.name}: top={top} "
                + ", ".join(f"{v.cause}={v.verdict}/{v.score}" for v in verdicts)
            )
    covered = {(s.runbook, s.cause) for s in scenarios if s.cause and not s.mix}
    assert covered == {(rb, c) for rb, cs in LISTED_CAUSES.items() for c in cs}
    assert wrong == []


def test_healthy_baseline_has_no_likely_cause(scenario_set, tmp_path: Path) -> None:
    prom, scenarios, _ = scenario_set
    for sc in (s for s in scenarios if s.cause is None):
        ev = gather(prom.url, sc, tmp_path)
        for runbook in diagnosis.RULES:
            likely = [v.cause for v in diagnosis.diagnose(runbook, ev) if v.verdict == "likely"]
            assert likely == [], f"{sc.name} {runbook}: {likely}"


def test_evidence_lines_carry_checkable_figures(scenario_set, tmp_path: Path) -> None:
    prom, scenarios, _ = scenario_set
    sc = next(s for s in scenarios if s.name == "high_error_rate/invalid_input/s1")
    [top, *_] = diagnosis.diagnose("high_error_rate", gather(prom.url, sc, tmp_path))
    assert top.cause == "invalid_input" and top.verdict == "likely"
    assert any(
        "validation and parse errors are" in e and "% of errors over the last 15m" in e
        for e in top.evidence
    )
    summary, first = diagnosis.summary([top])
    assert first == "invalid_input" and set(summary[0]) == {
        "cause",
        "verdict",
        "score",
        "evidence",
        "missing",
        "explained_share",
        "strongest",
    }
    assert summary[0]["explained_share"] == top.explained_share
    assert 0.5 <= top.explained_share <= 1.0


# The co-occurring scenarios (runbook_lib/lab/scenarios/mixes.py), written out here by hand:
# name -> the true cause(s), the one explaining most first. Two per runbook family at least.
MIXES = {
    "cache-grows-like-a-leak": ("memory", ("cache_too_large",)),
    "leak-while-libreoffice-spawns": ("memory", ("memory_leak",)),
    "leak-and-cache-together": ("memory", ("cache_too_large", "memory_leak")),
    "database-slow-cpu-busy": ("high_latency", ("slow_database_queries",)),
    "libreoffice-slow-cache-churns": ("high_latency", ("libreoffice_bottleneck",)),
    "database-and-libreoffice-slow": (
        "high_latency",
        ("slow_database_queries", "libreoffice_bottleneck"),
    ),
    "third-party-database-flaps": ("high_error_rate", ("third_party_api",)),
    "database-with-upstream-noise": ("high_error_rate", ("database_connection",)),
    "too-small-some-expire": ("cache_hit_rate", ("cache_too_small",)),
    "ttl-short-sometimes-full": ("cache_hit_rate", ("ttl_too_short",)),
    "libreoffice-zombies-with-orphans": ("libreoffice_leak", ("zombie_processes",)),
    "libreoffice-hung-with-zombies": ("libreoffice_leak", ("hung_processes",)),
    "fork-zombies-with-orphans": ("fork_leak", ("zombie_processes",)),
    "fork-hung-with-zombies": ("fork_leak", ("hung_processes",)),
    "fd-leak-on-a-low-limit": ("fd_leak", ("fd_leak",)),
    "low-limit-slow-drift": ("fd_leak", ("fd_limit_too_low",)),
    "logs-grow-prometheus-too": ("disk_usage", ("log_files_growing",)),
    "temp-files-logs-too": ("disk_usage", ("temp_files_not_cleaned",)),
    "crash-with-high-memory": ("service_down", ("process_crashed",)),
    "oom-with-a-fatal-line": ("service_down", ("oom_killed",)),
}
# Where the rules alone (no attribution) pick a wrong top cause, on one seed or more.
RULES_ALONE_FAIL = {
    "cache-grows-like-a-leak",
    "leak-and-cache-together",
    "database-slow-cpu-busy",
    "libreoffice-slow-cache-churns",
    "database-and-libreoffice-slow",
    "libreoffice-zombies-with-orphans",
    "fork-zombies-with-orphans",
}


def _tops(runbook: str, ev: diagnosis.Evidence) -> list[str]:
    return [t["cause"] for t in diagnosis.top_causes(diagnosis.diagnose(runbook, ev))]


def test_co_occurring_signals_do_not_change_the_top_cause(scenario_set, tmp_path: Path) -> None:
    from runbook_lib.diagnosis import engine

    prom, scenarios, _ = scenario_set
    mixed = [s for s in scenarios if s.mix]
    assert {s.mix for s in mixed} == set(MIXES)
    assert {s.seed for s in mixed} == {0, 1, 2}
    for family in LISTED_CAUSES:
        assert sum(rb == family for rb, _ in MIXES.values()) >= 2, family
    wrong, rules_alone_wrong = [], set()
    for sc in mixed:
        runbook, causes = MIXES[sc.mix]
        ev = gather(prom.url, sc, tmp_path)
        tops = _tops(runbook, ev)
        right = tops == list(causes) if len(causes) > 1 else tops[:1] == [causes[0]]
        if not right:
            wrong.append(f"{sc.name}: {tops}")
        saved = dict(engine.ATTRIBUTORS)
        engine.ATTRIBUTORS.clear()
        try:
            alone = _tops(runbook, ev)
        finally:
            engine.ATTRIBUTORS.update(saved)
        if alone[:1] != [causes[0]] or (len(causes) > 1 and alone != list(causes)):
            rules_alone_wrong.add(sc.mix)
    assert wrong == []
    assert rules_alone_wrong == RULES_ALONE_FAIL  # the scenarios really are confounded


# On the server profile (issue 15), docs/causes.md's last column, per scenario: the top cause
# when the server's series can decide it, else None, and then the true cause must be unknown
# with the missing series named. The server has no process_*, eviction, health, query,
# screenshot or slow-query series.
SERVER_TOP = {(r.runbook, r.cause): r.cause if r.server_decides else None for r in LISTED}


def test_on_the_server_profile_decided_causes_stay_right_and_the_rest_are_unknown(
    scenario_set_server, tmp_path: Path
) -> None:
    from runbook_lib.contract.names import use

    prom, scenarios, _ = scenario_set_server
    singles = [s for s in scenarios if s.cause]
    assert {(s.runbook, s.cause) for s in singles} == set(SERVER_TOP)
    wrong = []
    with use("server"):
        for sc in singles:
            verdicts = diagnosis.diagnose(sc.runbook, gather(prom.url, sc, tmp_path))
            top = diagnosis.summary(verdicts)[1]
            expected = SERVER_TOP[(sc.runbook, sc.cause)]
            true = next(v for v in verdicts if v.cause == sc.cause)
            if top != expected:
                wrong.append(f"{sc.name}: top {top}, expected {expected}")
            elif expected is None and (
                true.verdict != "unknown"
                or not any(
                    "not exposed by the server profile" in g for g in diagnosis.unknown_gaps([true])
                )  # fmt: skip
            ):
                wrong.append(f"{sc.name}: {sc.cause} is {true.verdict}: {true.missing}")
        for sc in (s for s in scenarios if s.cause is None):
            ev = gather(prom.url, sc, tmp_path)
            for runbook in diagnosis.RULES:
                likely = [v.cause for v in diagnosis.diagnose(runbook, ev) if v.verdict == "likely"]
                if likely:
                    wrong.append(f"healthy {runbook}: {likely}")
    assert wrong == []


def test_without_prometheus_every_metric_cause_is_unknown_with_the_reason() -> None:
    from datetime import UTC, datetime

    ev = investigate.gather(investigate.Inputs("http://127.0.0.1:1", Scope("x"), datetime.now(UTC)))
    assert ev.signals.values == {} and ev.signals.missing
    for runbook in diagnosis.RULES:
        for v in diagnosis.diagnose(runbook, ev):
            assert v.verdict == "unknown", (runbook, v)
            assert v.missing and any(
                "unreachable" in m or "host" in m or "log" in m for m in v.missing
            )


def test_scenarios_vary_in_magnitude_and_timing() -> None:
    a, b = (
        build("high_error_rate", "invalid_input", 0),
        build("high_error_rate", "invalid_input", 1),
    )
    assert a.timeline.onset - a.alert_at.timestamp() != b.timeline.onset - b.alert_at.timestamp()
    assert a.timeline.errors[-1].ratio.max() != pytest.approx(b.timeline.errors[-1].ratio.max())
    again = build("high_error_rate", "invalid_input", 0)
    assert (again.timeline.errors[-1].ratio == a.timeline.errors[-1].ratio).all()


@pytest.mark.parametrize(
    "held,of,verdict",
    [(7, 10, "likely"), (13, 20, "possible"), (35, 100, "possible"), (34, 100, "ruled_out"),
     (1, 10, "ruled_out"), (10, 10, "likely")],
)  # fmt: skip
def test_verdict_bands(held: int, of: int, verdict: str) -> None:
    """likely from a score of 0.7, possible from 0.35, ruled out below."""
    facts = [Fact(True, "sign", weight=held), Fact(False, "against", weight=of - held)]
    assert judge("c", facts).verdict == verdict
    assert judge("c", facts).score == round(held / of, 2)


def test_judge_rules() -> None:
    sign = Fact(True, "sign", weight=2)
    assert (
        judge("c", [Fact(None, "gate", weight=0, required=True, missing="why"), sign]).verdict
        == "unknown"
    )
    assert judge("c", [Fact(False, "gate", weight=0, required=True), sign]).verdict == "ruled_out"
    assert judge("c", [sign, Fact(False, "other", weight=2)]).score == 0.5
    only_exclusion = judge("c", [Fact(True, "not the other cause", weight=1, sign=False)])
    assert only_exclusion.verdict == "possible" and only_exclusion.score == 0.5
    assert judge("c", [Fact(None, "x", weight=1, missing="no data")]).missing == ["no data"]


# ------------------------------------------------------------------------ live evidence


@pytest.fixture
def faults(tmp_path: Path):
    f = ProcessFaults(tmp_path / "bin", tmp_path / "pids", lifetime_s=120)
    yield f
    f.close()


@pytest.mark.xdist_group("host")  # judges every soffice on the host
def test_live_zombie_soffice_processes_are_judged_from_the_host(faults) -> None:
    # Hold the Popen objects: one dropped is reaped by the next Popen (subprocess._cleanup),
    # and the zombie with it.
    zombies = [faults.spawn("soffice", "zombie") for _ in range(4)]
    ours = {pid for pid, _ in zombies}
    wait_for(lambda: all(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in ours),
             30, "the 4 soffice to have exited unreaped")  # fmt: skip
    snap = host_snapshot.take(names=("soffice",))
    assert {p["pid"] for p in snap["processes"] if p["status"] == "zombie"} >= ours
    ev = diagnosis.Evidence(Signals(), host=snap)
    verdicts = {v.cause: v for v in diagnosis.diagnose("libreoffice_leak", ev)}
    assert verdicts["zombie_processes"].verdict in ("likely", "possible")
    assert verdicts["zombie_processes"].score > verdicts["hung_processes"].score
    assert any("zombie" in e for e in verdicts["zombie_processes"].evidence)


def test_live_port_holder_is_named_for_eaddrinuse() -> None:
    port = free_port()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import socket,time; s=socket.socket(); "
                f"s.bind(('127.0.0.1',{port})); s.listen(); print('ok', flush=True); time.sleep(30)"
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        holder.stdout.readline()
        snap = host_snapshot.take(service_port=port, names=())
        assert snap["listeners"][0]["pid"] == holder.pid
        snap["service_pid"] = 1  # the service itself is not running: someone else holds it
        ev = diagnosis.Evidence(Signals(values={"up_min": 0.0}), host=snap)
        v = {v.cause: v for v in diagnosis.diagnose("service_down", ev)}["port_in_use"]
        assert v.verdict == "likely" and str(holder.pid) in " ".join(v.evidence)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.stack  # the Docker engine
def test_live_container_state_decides_crash_versus_oom() -> None:
    from runbook_lib.evidence import containers
    from runbook_lib.lab import images

    tag = images.busybox_image()
    client = docker_engine()
    name = f"runbook-diag-{uuid.uuid4().hex[:8]}"
    c = client.containers.run(tag, ["sh", "-c", "echo FATAL boom; exit 2"], name=name, detach=True)
    try:
        c.wait(timeout=30)
        state = containers.state(name)
        ev = diagnosis.Evidence(
            Signals(values={"up_min": 0.0, "memory_percent_peak": 40.0}), container=state
        )
        v = {v.cause: v for v in diagnosis.diagnose("service_down", ev)}
        assert v["process_crashed"].verdict == "likely"
        assert "exit code 2" in " ".join(v["process_crashed"].evidence)
        assert v["oom_killed"].verdict == "ruled_out"
    finally:
        c.remove(force=True)
