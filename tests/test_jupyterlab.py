"""The runbooks as people work on them: a real JupyterLab from the venv (on a free loopback
port, with a token), driven by Playwright in Debian's Chromium, against the local stack,
on a scratch clone of the repository with `make setup`'s git filter installed.

One JupyterLab and one stack serve the module: each runbook is opened, Run All (a few
at once, in tabs of their own), saved without edits (then git sees no change and `runbook
lint` passes; each saved runbook completed its summary); a parameter is changed and a later
cell re-run (it uses the new value); a runbook opened by hand takes the alert Alertmanager
fires, or says it explores a healthy service."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nbformat
import pytest

from runbook_lib.contract.alerts import RUNBOOKS
from runbook_lib.contract.settings import NOTEBOOKS, ROOT
from runbook_lib.lab import stack
from runbook_lib.records import record
from tests.polling import wait_for

from .conftest import free_port

pytestmark = pytest.mark.stack  # the stack, JupyterLab with its kernels, a browser
RUNBOOK_CLI = Path(sys.executable).with_name("runbook")


@dataclass
class Lab:
    url: str
    token: str
    clone: Path
    info: stack.StackInfo
    page: object  # playwright Page


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c",
                           "user.email=test@example.invalid", *args], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _scratch_clone(tmp: Path) -> Path:
    """The repository as committed, with this work tree's runbooks, and the git filter
    `make setup` installs (the same script, with this venv's Python)."""
    clone = tmp / "clone"
    _git(tmp, "clone", "-q", "--no-hardlinks", str(ROOT), str(clone))
    for path in NOTEBOOKS.glob("*.ipynb"):
        _copy_if_changed(path, clone / "runbook_lib" / "notebooks" / path.name)
    _copy_if_changed(ROOT / ".gitattributes", clone / ".gitattributes")
    subprocess.run(["bash", str(ROOT / "scripts" / "install-git-filter.sh"), sys.executable],
                   cwd=clone, check=True, capture_output=True)  # fmt: skip
    _git(clone, "add", "-A")
    if _git(clone, "status", "--porcelain"):
        _git(clone, "commit", "-q", "-m", "the work tree's runbooks")
    return clone


def _copy_if_changed(source: Path, target: Path) -> None:
    """A file git has to read again only if it changed: git reads every runbook it sees
    touched through the filter, a Python process each (seconds of CPU for them all)."""
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("jupyterlab")
    clone = _scratch_clone(tmp)
    info = stack.start(stack.StackOptions(state_dir=tmp / "stack", any_free_port=True))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "RUNBOOK_PROMETHEUS_URL": info.urls["prometheus"],
        "RUNBOOK_ALERTMANAGER_URL": info.urls["alertmanager"],
        "RUNBOOK_STATE_DIR": info.state_dir,
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
    }
    log = open(tmp / "jupyterlab.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={clone}",
         "--expose-app-in-browser", "--allow-root", "--LabApp.news_url=None",
         "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=log, cwd=clone,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/api/status?token={token}", timeout=2).status_code
                 == 200, 120, "jupyter lab")  # fmt: skip
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab?token={token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started",
                                   timeout=120_000)  # fmt: skip
            page.evaluate("() => window.jupyterapp.started")
            yield Lab(url, token, clone, info, page)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        stack.stop(Path(info.state_dir))


# -- what a person does, through JupyterLab's own commands --------------------------------
OPEN = """async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  return panel.sessionContext.session ? panel.sessionContext.session.kernel.name : null;
}"""
CURRENT = "window.jupyterapp.shell.currentWidget"
FINISHED = f"""() => {{
  const w = {CURRENT};
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return !!kernel && kernel.status === 'idle' && cells.every(c => c.model.executionCount !== null);
}}"""
ERRORS = f"""() => {CURRENT}.content.widgets.filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""
OUTPUT_TEXT = f"""(i) => {CURRENT}.content.widgets[i].model.outputs.toJSON()
  .map(o => JSON.stringify(o.data || o.text || '')).join('\\n')"""


def _open(lab: Lab, path: str) -> None:
    kernel = lab.page.evaluate(OPEN, path)
    assert kernel == "python3", f"{path} opened on kernel {kernel}"


# Run All in several tabs at once: one runbook at a time leaves a core idle while its
# kernel, the server and the browser wait on each other (the 11 runbooks took 123 s one
# after the other, 80 s three at a time, on 2 cores); a few at a time, so that none waits
# minutes for the CPU.
TABS_AT_ONCE = 3
RUN_ALL_IN_TABS = """([paths, atOnce]) => {
  const app = window.jupyterapp;
  const ran = window.ranAll = {};
  const runOne = async (path) => {
    const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
    await panel.context.ready;
    await panel.sessionContext.ready;
    const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
    await app.commands.execute('notebook:run-all-cells', {widgetId: panel.id, activate: false});
    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
    ran[path] = {id: panel.id, kernel: kernel ? kernel.name : null,
                 finished: cells.every(c => c.model.executionCount !== null),
                 errors: cells.flatMap(c => c.model.outputs.toJSON())
                   .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)};
  };
  const queue = [...paths];
  const tab = async () => { while (queue.length) await runOne(queue.shift()); };
  Promise.all(Array.from({length: atOnce}, tab))
    .catch(e => { ran.failed = String(e); });
}"""


def _run_all_in_tabs(lab: Lab, paths: list[str], timeout_s: float = 600) -> dict[str, str]:
    """Open each of `paths` and Run All, `TABS_AT_ONCE` tabs at a time; each ran on the
    runbook kernel, every code cell ran, and none raised. Returns each path's tab id."""
    lab.page.evaluate(RUN_ALL_IN_TABS, [paths, TABS_AT_ONCE])
    lab.page.wait_for_function(
        "(n) => window.ranAll.failed || Object.keys(window.ranAll).length === n",
        arg=len(paths), timeout=timeout_s * 1000, polling=500,
    )  # fmt: skip
    ran = lab.page.evaluate("() => window.ranAll")
    assert "failed" not in ran, ran["failed"]
    for path in paths:
        assert ran[path]["kernel"] == "python3", f"{path} opened on kernel {ran[path]['kernel']}"
        assert ran[path]["finished"] and ran[path]["errors"] == [], (path, ran[path])
    return {path: ran[path]["id"] for path in paths}


def _activate(lab: Lab, tab: str) -> None:
    lab.page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", tab)


def _save_and_close(lab: Lab) -> None:
    lab.page.evaluate(f"""async () => {{
      const w = {CURRENT};
      await window.jupyterapp.commands.execute('docmanager:save');
      await w.sessionContext.shutdown();
      w.dispose();
    }}""")


def _run_cell(lab: Lab, index: int, source: str | None = None) -> str:
    """Set cell `index`'s source (when given), run that cell alone, and return its output."""
    lab.page.evaluate(
        f"""async ([i, source]) => {{
      const w = {CURRENT};
      const cell = w.content.widgets[i];
      if (source !== null) cell.model.sharedModel.setSource(source);
      const before = cell.model.executionCount;
      w.content.activeCellIndex = i;
      await window.jupyterapp.commands.execute('notebook:run-cell');
    }}""",
        [index, source],
    )
    lab.page.wait_for_function(FINISHED, timeout=120_000, polling=300)
    assert lab.page.evaluate(ERRORS) == []
    return lab.page.evaluate(OUTPUT_TEXT, index)


def _cell_index(lab: Lab, text: str) -> int:
    return lab.page.evaluate(
        f"(t) => {CURRENT}.content.widgets.findIndex(c => c.model.sharedModel.getSource().includes(t))",
        text,
    )


# -- the tests ----------------------------------------------------------------------------
def test_run_all_and_save_changes_nothing_git_or_lint_see(lab: Lab) -> None:
    """Every runbook with its defaults (only the local stack's URLs set), as Run All in
    JupyterLab runs it: it completes its summary, and saved, git and lint see no change."""
    started = time.monotonic()
    tabs = _run_all_in_tabs(lab, [f"notebooks/{runbook}.ipynb" for runbook in RUNBOOKS])
    for runbook in RUNBOOKS:
        _activate(lab, tabs[f"notebooks/{runbook}.ipynb"])
        if runbook == "high_error_rate":  # opened by hand on an instance with no alert
            header = _run_cell_output(lab, "run.header()")
            assert "Exploration of a healthy service" in header and "🚨" not in header
            message = _run_cell_output(lab, "run.message()")
            assert "No incident message" in message and "INCIDENT" not in message
        _save_and_close(lab)
    print(f"\nRun All + save of {len(RUNBOOKS)} runbooks: {time.monotonic() - started:.0f} s")
    for runbook in RUNBOOKS:
        summary = record.summary_from_notebook(nbformat.read(_saved(lab, runbook), as_version=4))
        assert summary is not None and summary.status == "completed", runbook
        assert summary.runbook == runbook
    saved = json.loads(_saved(lab, "high_error_rate").read_text())
    assert saved["metadata"]["language_info"]["name"] == "python"  # JupyterLab wrote it all,
    assert any(c.get("outputs") for c in saved["cells"])  # outputs included, yet:
    _git(lab.clone, "add", "-A")  # (status lists the saved files until then: their size
    assert _git(lab.clone, "status", "--porcelain") == ""  # changed) and nothing to commit:
    # git diff shows nothing (after the add: git reads each saved runbook through the
    # filter once, a Python process each)
    subprocess.run(["git", "-C", str(lab.clone), "diff", "--exit-code", "HEAD"], check=True)
    done = subprocess.run([str(RUNBOOK_CLI), "lint", str(lab.clone / "notebooks")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout


def _saved(lab: Lab, runbook: str) -> Path:
    return lab.clone / "runbook_lib" / "notebooks" / f"{runbook}.ipynb"


def _run_cell_output(lab: Lab, text: str) -> str:
    return lab.page.evaluate(OUTPUT_TEXT, _cell_index(lab, text))


def test_a_changed_parameter_reaches_the_next_cell_run(lab: Lab) -> None:
    """Edit the parameters cell, run it, run the header (not the start cell): the header
    is the new evaluation time's and the new instance's."""
    _open(lab, "notebooks/high_error_rate.ipynb")
    for text in ("lookback_minutes: int", "notebook.start("):
        _run_cell(lab, _cell_index(lab, text))
    header = _cell_index(lab, "run.header()")
    before = _run_cell(lab, header)
    assert "2026-01-15 10:00:00" not in before and "edited-instance:1" not in before
    params = _cell_index(lab, "lookback_minutes: int")
    source = lab.page.evaluate(
        f"(i) => {CURRENT}.content.widgets[i].model.sharedModel.getSource()", params
    )
    edited = source.replace('at: str = ""', 'at: str = "2026-01-15T10:00:00Z"').replace(
        '"instance": "127.0.0.1:9464"', '"instance": "edited-instance:1"'
    )
    assert edited != source
    _run_cell(lab, params, edited)
    after = _run_cell(lab, header)
    assert "At 2026-01-15 10:00:00 UTC" in after and "edited-instance:1" in after
    _close_without_saving(lab)


def _close_without_saving(lab: Lab) -> None:
    lab.page.evaluate(f"""async () => {{
      const w = {CURRENT};
      w.context.model.dirty = false;
      await w.sessionContext.shutdown();
      w.dispose();
    }}""")


def test_opened_by_hand_the_runbook_takes_the_firing_alert(lab: Lab) -> None:
    """Alertmanager holds a critical GgenMcpHighErrorRate for an instance: the runbook opened
    for that instance examines it (its start, severity, labels), and for another instance
    still explores."""
    starts = (datetime.now(UTC) - timedelta(minutes=7)).replace(microsecond=0)
    alert = {"labels": {"alertname": "GgenMcpHighErrorRate", "severity": "critical",
                        "job": "ggen-mcp", "instance": "firing-instance:1", "team": "sre"},
             "annotations": {"summary": "errors above 5%"},
             "startsAt": starts.isoformat().replace("+00:00", "Z")}  # fmt: skip
    am = lab.info.urls["alertmanager"]
    assert httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=10).status_code == 200
    wait_for(lambda: httpx.get(f"{am}/api/v2/alerts", timeout=5).json(), 30, "the alert")
    _open(lab, "notebooks/high_error_rate.ipynb")
    params = _cell_index(lab, "lookback_minutes: int")
    source = lab.page.evaluate(
        f"(i) => {CURRENT}.content.widgets[i].model.sharedModel.getSource()", params
    )
    _run_cell(lab, params, source.replace("127.0.0.1:9464", "firing-instance:1"))
    _run_cell(lab, _cell_index(lab, "notebook.start("))
    header = _run_cell(lab, _cell_index(lab, "run.header()"))
    assert "GgenMcpHighErrorRate · critical · firing" in header
    assert f"**Started** {starts:%Y-%m-%d %H:%M:%S} UTC" in header
    assert "errors above 5%" in header and "team" in header
    assert f"Opened by hand: the alert of this runbook Alertmanager ({am}) holds firing" in header
    marker = lab.page.evaluate(
        f"""async () => {{
      const future = {CURRENT}.sessionContext.session.kernel.requestExecute(
        {{code: 'print(run.alert_start is not None, run.p.severity)'}});
      let text = '';
      future.onIOPub = (msg) => {{ if (msg.content.text) text += msg.content.text; }};
      await future.done;
      return text;
    }}"""
    )
    assert marker.strip() == "True critical"
    _close_without_saving(lab)
