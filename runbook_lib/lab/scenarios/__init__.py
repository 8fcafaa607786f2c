"""Incident scenarios for deterministic tests: each cause id of the routing table (plus a
healthy baseline) as OpenMetrics history, log lines and host state around a fixed past time,
backfilled into a private Prometheus with promtool."""

from runbook_lib.lab.scenarios import host_causes  # noqa: F401  (registers after catalog.py's)
from runbook_lib.lab.scenarios.backfill import ScenarioPrometheus, backfill, write_openmetrics
from runbook_lib.lab.scenarios.build import (
    BASE_TIME,
    Scenario,
    all_scenarios,
    build,
    build_mix,
    healthy,
    mixed_scenarios,
)
from runbook_lib.lab.scenarios.catalog import CATALOG

__all__ = [
    "BASE_TIME",
    "CATALOG",
    "Scenario",
    "ScenarioPrometheus",
    "all_scenarios",
    "backfill",
    "build",
    "build_mix",
    "healthy",
    "mixed_scenarios",
    "write_openmetrics",
]
