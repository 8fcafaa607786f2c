"""The package works without the checkout: the wheel holds the notebooks, the rule files and
the index migrations, and, installed on its own (no repository on the path, run from
another directory), it writes its config, points at its own rule files and runs a notebook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # what the Containerfile copies; setuptools builds in the source tree
    shutil.copytree(ROOT / "runbook_lib", src / "runbook_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [whl] = out.glob("runbook_lib-*.whl")
    return whl


def test_the_wheel_holds_notebooks_rules_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for nb in (ROOT / "runbook_lib" / "notebooks").glob("*.ipynb"):
        assert f"runbook_lib/notebooks/{nb.name}" in names
    for rule in ("alerts.yml", "recording.yml", "receiver.yml", "server/recording.yml"):
        assert f"runbook_lib/rules/{rule}" in names
    for mig in (ROOT / "runbook_lib" / "records" / "migrations" / "versions").glob("0*.py"):
        assert f"runbook_lib/storage/migrations/versions/{mig.name}" in names
    assert "runbook_lib/storage/migrations/script.py.mako" in names
    assert not any(n.startswith(("tests/", "deploy/", "benchmarks/")) for n in names)


def test_installed_alone_it_inits_and_runs_a_notebook_from_another_directory(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
         str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "RUNBOOK_CONFIG": str(tmp_path / "etc" / "runbook.toml"),
    }
    env.pop("RUNBOOK_OUTPUT_DIR", None)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # a non-root default would be here

    def runbook(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runbook_lib.cli", *args], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip

    where = subprocess.run(
        [sys.executable, "-c", "import runbook_lib; print(runbook_lib.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), where  # the installed copy, not the checkout

    init = runbook("init", "--output", str(tmp_path / "records"))
    assert init.returncode == 0, init.stderr
    rendered = tmp_path / "etc" / "rules"  # rendered beside runbook.toml from the package's
    assert f"  - {rendered / 'alerts.yml'}\n" in init.stdout
    assert f"# {site}/runbook_lib/rules/alerts.yml\n" in (rendered / "alerts.yml").read_text()
    assert f"  - {rendered / 'receiver.yml'}\n" in init.stdout
    assert (tmp_path / "etc" / "webhook-token").exists()

    run = runbook("run", "GgenMcpHighErrorRate", "--prometheus-url", "http://127.0.0.1:1")
    assert run.returncode == 1, run.stderr  # degraded: nothing answers on port 1
    rec = Path(run.stdout.splitlines()[0])
    assert rec.parent == tmp_path / "records"  # from runbook.toml, not the cwd
    assert json.loads((rec / "summary.json").read_text())["status"] == "degraded"
    assert (rec / "report.html").exists() and list(work.iterdir()) == []
