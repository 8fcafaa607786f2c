"""The worker pool with real notebook runs in real processes: one record per run, hostile
labels kept as data, hanging Prometheus and overrunning runs end as `timed_out` with no
kernel left, and recovery after a crash keeps finished records and re-runs the rest."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import psutil
import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.contract.incident import IncidentRun
from runbook_lib.execution import runner
from runbook_lib.incidents.index import Index
from runbook_lib.records import record
from runbook_lib.service.workers import MARK, Pool, RunConfig
from tests.polling import wait_for

from .conftest import free_port


def alert(alertname: str = "GgenMcpHighErrorRate", **labels: str) -> Alert:
    labels = {"alertname": alertname, "severity": "critical", **labels}
    return Alert(
        status="firing",
        labels=labels,
        annotations={"summary": "error rate 7%"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        fingerprint=f"fp{abs(hash(tuple(sorted(labels.items())))):x}"[:16],
    )


def marked(prefix: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK, "").startswith(prefix) and p.status() != "zombie":
                found.append(p)
        except psutil.Error:
            pass
    return found


def drain(pool: Pool, index: Index, runs: int, timeout: float) -> list[IncidentRun]:
    pool.start()
    try:

        def done() -> list[dict]:
            found = [r for i in index.incidents() for r in i.runs if r.state == "done"]
            return found if len(found) >= runs else []

        return wait_for(done, timeout, f"{runs} runs done", every=0.3, detail=index.incidents)
    finally:
        pool.stop()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A 'Prometheus' that accepts connections and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_hostile_labels_reach_the_record_as_data(tmp_path: Path) -> None:
    hostile = {
        "instance": "a\"b'c\\d\n$(id)`id`;|&>../../x",
        "job": "../../etc",
        "team": "ünïcødé ✓ 火 \u2028" + "y" * 300,
    }
    index = Index(tmp_path / "out" / "index.sqlite")
    index.accept([alert(**hostile)], verify_delay=0)
    cfg = RunConfig(
        output_dir=tmp_path / "out", workers=1, prometheus_url=f"http://127.0.0.1:{free_port()}"
    )
    [run] = drain(Pool(index, cfg), index, 1, 120)
    rec = tmp_path / "out" / run.record
    assert rec.parent == tmp_path / "out" and (rec / "record.html").exists()
    summ = record.summary(rec).as_json()
    assert summ["status"] == "degraded" and run.status == "degraded"  # the index has it too
    assert {k: summ["labels"][k] for k in hostile} == hostile
    assert summ["kind"] == "investigation" and summ["run_id"] == run.id
    assert "did not answer" in " ".join(summ["degraded_by"])
    assert not list((tmp_path / "out").glob(".tmp-*"))
    assert not marked(str(index.path.resolve()))


def test_a_hanging_prometheus_ends_as_timed_out_with_no_kernel_left(
    tmp_path: Path, blackhole: str
) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(instance="h:1")], verify_delay=0)
    cfg = RunConfig(output_dir=tmp_path, workers=1, prometheus_url=blackhole, cell_timeout=2)
    [run] = drain(Pool(index, cfg), index, 1, 120)
    summ = record.summary(tmp_path / run.record).as_json()
    assert run.status == "timed_out" == summ["status"]
    assert "Timeout" in summ["error"] or "timed out" in summ["error"].lower()
    html = (tmp_path / run.record / "record.html").read_text()
    assert "Run timed_out" in html
    assert not marked(str(index.path.resolve()))


def test_a_run_over_its_wall_limit_is_killed_and_recorded(tmp_path: Path, blackhole: str) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(instance="h:2")], verify_delay=0)
    cfg = RunConfig(output_dir=tmp_path, workers=1, prometheus_url=blackhole, run_timeout=3)
    [run] = drain(Pool(index, cfg), index, 1, 120)
    summ = record.summary(tmp_path / run.record).as_json()
    assert summ["status"] == "timed_out" and "3s limit" in summ["error"]
    assert summ["alert"] == "GgenMcpHighErrorRate" and summ["labels"]["instance"] == "h:2"
    assert not marked(str(index.path.resolve()))


def test_recovery_keeps_finished_records_reruns_the_rest_and_kills_leftovers(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    index.accept([alert(instance="done:1"), alert(instance="lost:1")], verify_delay=0)
    first, second = index.claim(), index.claim()
    assert first and second and index.claim() is None
    params = runner.alert_params(first.alert.name, first.alert.labels, fp=first.alert.fingerprint)
    runner.failure_record(
        params, out, runbook=first.runbook, name=first.record, status="failed", error="kept"
    )
    (out / f".tmp-{second.record}-dead").mkdir()
    prefix = f"{index.path.resolve()}#"
    leftover = subprocess.Popen(
        ["sleep", "300"], env={**os.environ, MARK: f"{prefix}{second.run_id}"}
    )
    pool = Pool(index, RunConfig(output_dir=out, workers=1))
    assert pool.recover() == 1
    assert pool.leftovers_killed == [leftover.pid]
    leftover.wait(5)  # returns at once: the sweep killed (and reaped) it
    assert not list(out.glob(".tmp-*"))
    runs = {r.record: r for i in index.incidents() for r in i.runs}
    assert runs[first.record].state == "done" and runs[first.record].error == "kept"
    assert runs[second.record].state == "queued"
    assert index.claim().run_id == second.run_id  # and it is claimed again, with attempt 2


# -- warm kernels: one per run ------------------------------------------------------------
PROBE = """import os, sys
import runbook_lib.evidence.prom as prom
from IPython.display import display
seen = {"global": "LEAKED" in globals(), "patched": hasattr(prom.choose_step, "planted")}
LEAKED = True  # a global the next run must not see
def planted(*args, **kwargs):
    return 1.0
planted.planted = True
prom.choose_step = planted  # a monkeypatched library function, likewise
summary = {"alert": alert_name, "runbook": "triage", "status": "completed", "top_cause": None,
           "seen": seen, "kernel": os.getpid(), "zygote": os.getppid(),
           "modules_preloaded": "pandas" in sys.modules and "matplotlib" in sys.modules,
           "library_preloaded": sorted(m for m in ("runbook_lib.notebook.run",
                                       "runbook_lib.diagnosis.resolution") if m in sys.modules),
           "engine_imported": "papermill" in sys.modules}
display({"application/json": summary}, raw=True, metadata={"runbook_summary": True})
"""


def probe_notebooks(tmp_path: Path, source: str = PROBE) -> Path:
    """A notebook directory whose `triage` reports what it sees, then leaves a mess."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell('alert_name = "x"', metadata={"tags": ["parameters"]}),
            new_code_cell(source),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    d = tmp_path / "notebooks"
    d.mkdir()
    nbformat.write(nb, d / "triage.ipynb")
    return d


def test_each_run_gets_a_fresh_kernel_no_globals_or_patches_leak(tmp_path: Path) -> None:
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    index.accept([alert(alertname="ProbeOne", instance="a")], verify_delay=0)
    index.accept([alert(alertname="ProbeTwo", instance="b")], verify_delay=0)
    cfg = RunConfig(output_dir=out, workers=1, notebook_dir=probe_notebooks(tmp_path))
    done = drain(Pool(index, cfg), index, 2, 120)
    first, second = (
        record.summary(out / r.record).as_json() for r in sorted(done, key=lambda r: r.id)
    )
    assert first["seen"] == second["seen"] == {"global": False, "patched": False}
    assert first["zygote"] == second["zygote"]  # the same worker ran both ...
    assert first["kernel"] != second["kernel"]  # ... each in a kernel of its own
    assert first["modules_preloaded"] is True  # forked warm: the imports were already done
    # ... the runbooks' library too, the lazily imported parts included (~0.8 s a run)
    assert first["library_preloaded"] == [
        "runbook_lib.diagnosis.resolution",
        "runbook_lib.notebook.run",
    ]
    assert first["engine_imported"] is False  # the cells never need papermill: not even forked
    nb = nbformat.read(out / done[0].record / "record.ipynb", as_version=4)
    assert "runbook-answer" in nb.cells[0].source  # the answer first, then the notebook
    assert "injected-parameters" in nb.cells[2].metadata.tags  # a papermill record
    assert nb.metadata.papermill.parameters.alert_name in ("ProbeOne", "ProbeTwo")
    timings = json.loads((out / done[0].record / "timings.json").read_text())
    assert {"queue", "kernel", "parameterize", "execute", "export", "publish"} <= set(
        timings["phases"]
    )
    assert [c["source"] for c in timings["cells"]] == [
        'alert_name = "x"',
        "# Parameters",
        "import os, sys",
    ]


def test_timings_count_the_cpu_seconds_of_the_kernel_and_the_worker(tmp_path: Path) -> None:
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    index.accept([alert(alertname="ProbeBurn", instance="a")], verify_delay=0)
    burn = (
        "import time\n_t = time.process_time()\nwhile time.process_time() - _t < 0.6:\n    pass\n"
    )
    cfg = RunConfig(output_dir=out, workers=1, notebook_dir=probe_notebooks(tmp_path, burn + PROBE))
    [done] = drain(Pool(index, cfg), index, 1, 120)
    cpu = json.loads((out / done.record / "timings.json").read_text())["cpu"]
    assert 0.6 <= cpu["kernel_s"] < 30  # the cell burns 0.6 s of the kernel's own CPU
    assert 0 < cpu["worker_s"] < 30  # papermill, the export and the publish, in the worker


# Reports the zygote's other child while this run executes: the kernel forked for the next run.
SIBLING = """import os, time, psutil
from IPython.display import display
me, zygote = os.getpid(), psutil.Process(os.getppid())
deadline, others = time.monotonic() + 20, []
while not others and time.monotonic() < deadline:
    others = [p.pid for p in zygote.children() if p.pid != me]
    time.sleep(0.05)
summary = {"alert": alert_name, "runbook": "triage", "status": "completed", "top_cause": None,
           "kernel": me, "sibling": others[0] if others else None}
display({"application/json": summary}, raw=True, metadata={"runbook_summary": True})
"""


def test_the_next_kernel_is_forked_and_warmed_while_a_run_executes(tmp_path: Path) -> None:
    """Under a backlog the next job starts in a kernel already forked, not after a fork."""
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    index.accept([alert(alertname="ProbeOne", instance="a")], verify_delay=0)
    index.accept([alert(alertname="ProbeTwo", instance="b")], verify_delay=0)
    cfg = RunConfig(output_dir=out, workers=1, notebook_dir=probe_notebooks(tmp_path, SIBLING))
    done = drain(Pool(index, cfg), index, 2, 120)
    first, second = (
        record.summary(out / r.record).as_json() for r in sorted(done, key=lambda r: r.id)
    )
    assert first["sibling"] is not None  # a second kernel existed during the first run ...
    assert first["sibling"] == second["kernel"]  # ... and ran the second job
    assert second["kernel"] != first["kernel"]


def _cmdline(p: psutil.Process) -> list[str]:
    """A child's argv, or [] for one that exited (zombies are not yet reaped)."""
    try:
        return p.cmdline()
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return []


def test_a_kernel_that_dies_while_idle_is_replaced_without_losing_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    pool = Pool(index, RunConfig(output_dir=out, workers=1, notebook_dir=probe_notebooks(tmp_path)))
    pool.start()
    try:
        worker = psutil.Process(pool.slots[0].proc.pid)

        def idle_kernel() -> psutil.Process | None:
            zygotes = [
                p for p in worker.children() if "runbook_lib.execution.zygote" in _cmdline(p)
            ]
            kids = zygotes[0].children() if zygotes else []
            return kids[0] if kids else None

        kernel = wait_for(idle_kernel, 60, "the worker's warm kernel")
        kernel.kill()
        index.accept([alert(alertname="AfterDeath", instance="c")], verify_delay=0)
        pool.notify()
        [run] = wait_for(
            lambda: [r for i in index.incidents() for r in i.runs if r.state == "done"],
            60,
            "the run after the kernel's death done",
        )
        summ = record.summary(out / run.record).as_json()
        assert run.status == "completed" and summ["kernel"] != kernel.pid
    finally:
        pool.stop()
