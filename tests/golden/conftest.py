"""Serve the golden scenarios from a real Prometheus while nbval re-executes the golden
notebooks; the kernels find it through RUNBOOK_PROMETHEUS_URL."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_started: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before nbval starts the first golden notebook's kernel, so the kernel inherits the URL.
    if not str(item.fspath).endswith(".ipynb") or _started:
        return
    from tests.golden.golden import start_prometheus

    work = Path(tempfile.mkdtemp(prefix="golden-prom-"))
    prom = start_prometheus(work)
    _started["prom"] = prom
    os.environ["RUNBOOK_PROMETHEUS_URL"] = prom.url
    item.config.add_cleanup(prom.stop)
