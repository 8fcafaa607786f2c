"""The runbook notebooks, written from one spec so their structure stays the same.

`python -m runbook_lib.notebook.spec` (or `make notebooks`) rewrites notebooks/*.ipynb from the
spec below; a test checks the committed notebooks match it. The words come from the
runbook (`runbook-source.md`), rephrased; every code cell is one call into `runbook_lib`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from runbook_lib.contract.config import MEMORY_LIMIT_BYTES, NOTEBOOKS
from runbook_lib.evidence.panels import PANELS
from runbook_lib.notebook.steps import step_panels

NOTEBOOK_DIR = NOTEBOOKS


@dataclass(frozen=True)
class Spec:
    title: str
    alert: str
    intro: str
    steps: list[tuple[str, str]]  # (explanation, step name)
    charts: tuple[str, ...] = ()
    mitigations: tuple[tuple[str, str], ...] = ()  # (explanation, action)
    severity: str = "critical"
    extra_params: dict = field(default_factory=dict)


SPECS: dict[str, Spec] = {
    "service_down": Spec(
        "Service down",
        "GgenMcpServiceDown",
        "GGEN MCP stopped answering health checks (or answers no request successfully). "
        "Find out whether the process is gone, cannot bind its port, was killed for memory, "
        "or lost a dependency.",
        [
            (
                "**Is the service running?** The scrape status over the window, then the process "
                "and container on this host (live runs only).",
                "service_running",
            ),
            (
                "**What do its logs say?** Lines of the last minutes, sorted by the runbook's "
                "symptoms: fatal errors, EADDRINUSE, 'Killed', connection errors.",
                "service_logs",
            ),
            (
                "**System resources.** CPU and memory before the stop; memory, load and disks of "
                "the host when live.",
                "system_resources",
            ),
            ("**Network.** The health endpoint and who listens on the service port.", "network"),
        ],
        charts=("request_rate", "component_health"),
        mitigations=(
            ("Restart the container (the runbook's first resolution step).", "restart_container"),
        ),
    ),
    "high_error_rate": Spec(
        "High error rate",
        "GgenMcpHighErrorRate",
        "More requests than usual fail. Find which error types and which tools, then which "
        "of the runbook's causes explains them.",
        [
            (
                "**Error types.** The error rate by `error_type`: the first question of the "
                "runbook.",
                "error_types",
            ),
            (
                "**Recent errors in the logs**, matched to the runbook's symptoms (validation "
                "errors, connection refused, HTTP 5xx, 'Failed to start LibreOffice').",
                "recent_errors",
            ),
            ("**Which tools fail.** Errors by tool.", "failing_tools"),
        ],
        charts=("request_rate", "component_health"),
    ),
    "high_latency": Spec(
        "High latency",
        "GgenMcpHighLatency",
        "Requests are slow. Find which tools are slow and whether CPU, memory, the database, "
        "the cache or LibreOffice is the bottleneck.",
        [
            ("**Latency by tool.** p95 per tool over the window.", "latency_by_tool"),
            ("**System load.** CPU of the process; the host's load when live.", "system_load"),
            ("**Slow queries.** Database query time and 'slow query' log lines.", "slow_queries"),
        ],
        charts=("cache_evictions", "memory"),
    ),
    "memory": Spec(
        "Memory",
        "GgenMcpMemoryCritical",
        "Memory is close to the service's limit. Tell a leak (steady climb) from a cache that "
        "grew too large, large payloads (jumps) and too many LibreOffice processes.",
        [
            (
                "**Memory breakdown.** Resident memory against the limit, heap, the cache's share.",
                "memory_breakdown",
            ),
            (
                "**Leak or not?** The trend over the window and when it would reach the limit.",
                "memory_trend",
            ),
            (
                "**Recent changes.** Restarts and traffic over the window; deployments and data "
                "size are for the team to confirm.",
                "recent_changes",
            ),
        ],
        charts=("cache_size", "libreoffice_processes"),
        mitigations=(("Restart the container to free memory (temporary).", "restart_container"),),
    ),
    "cache_hit_rate": Spec(
        "Cache hit rate",
        "GgenMcpLowCacheHitRate",
        "Fewer than half of the workbook lookups "
        "hit the cache. Find out whether the cache is too small, keys are poor, requests vary "
        "too much, or entries expire too soon.",
        [
            ("**Cache metrics.** Hit rate and evictions.", "cache_metrics"),
            (
                "**Size and evictions.** Is the cache at its maximum while it evicts?",
                "cache_size_evictions",
            ),
            (
                "**Access patterns.** Cache misses in the logs: one workbook under many keys, or a "
                "new workbook every time?",
                "access_patterns",
            ),
        ],
        charts=("request_rate", "latency_by_tool"),
        severity="warning",
    ),
    "libreoffice_leak": Spec(
        "LibreOffice process leak",
        "GgenMcpHighLibreOfficeProcessCount",
        "soffice processes accumulate. Find out whether they are orphaned, zombies, or hung.",
        [
            (
                "**Count the processes**, and list them with parent, state, age and CPU time.",
                "process_counts",
            )
        ],
        charts=("memory",),
        severity="warning",
        mitigations=(
            (
                "End soffice processes older than 10 minutes (the runbook's "
                "`pkill -9 soffice`, limited to old ones).",
                "end_old_soffice",
            ),
        ),
    ),
    "fork_leak": Spec(
        "Fork process leak",
        "GgenMcpHighActiveForks",
        "Workbook fork processes are not cleaned up. Find out whether they are orphaned, "
        "zombies (never waited for), or hung.",
        [
            (
                "**Count the fork processes** and list them with parent, state, age and CPU time.",
                "process_counts",
            )
        ],
        charts=("memory",),
        severity="warning",
        mitigations=(
            ("Restart the container: zombies go with their parent.", "restart_container"),
        ),
    ),
    "fd_leak": Spec(
        "File descriptor exhaustion",
        "GgenMcpFileDescriptorExhaustion",
        "Open descriptors approach the process limit; past it every open() fails with 'Too "
        "many open files'. Tell a leak (steady climb) from a limit set too low.",
        [
            ("**Descriptors against the limit**, and per process when live.", "fds"),
            ("**'Too many open files' in the logs.**", "service_logs"),
        ],
        charts=("error_rate",),
        mitigations=(
            ("Restart the container to release descriptors (temporary).", "restart_container"),
        ),
    ),
    "disk_usage": Spec(
        "Disk usage",
        "GgenMcpHighDiskUsage",
        "The root filesystem fills up. Find what grows: logs, Prometheus data, or temp files.",
        [
            ("**Disk use** and when it would be full at this rate.", "disk_usage"),
            ("**Large directories.**", "large_dirs"),
            ("**Temp files** (`ggen-mcp-*`) and how many are older than a day.", "temp_files"),
        ],
        charts=(),
        severity="warning",
        mitigations=(("Delete `ggen-mcp-*` temp files older than a day.", "clean_temp_files"),),
    ),
    "deployment": Spec(
        "Deployment",
        "GgenMcpDeploymentCompleted",
        "The service restarted: a deployment, or a crash and a restart. Check what changed "
        "with it: restarts in the window, traffic, errors and latency before and after.",
        [
            (
                "**What changed.** Restarts in the window and traffic before and after.",
                "recent_changes",
            ),
            ("**Errors since.** Error types over the window.", "error_types"),
            ("**Latency by tool.** p95 per tool over the window.", "latency_by_tool"),
        ],
        charts=("error_rate", "latency"),
        severity="info",
    ),
    "triage": Spec(
        "Triage",
        "GgenMcpSomethingElse",
        "An alert no runbook covers. The overview, the alert's labels and links, and the "
        "service's logs, to decide where to go next.",
        [
            ("**Service logs**, matched to the known symptoms.", "service_logs"),
            ("**System resources.**", "system_resources"),
        ],
        charts=("request_rate", "cpu"),
        severity="warning",
    ),
}


PARAMETERS = """\
# Parameters: Papermill replaces these for an alert; the defaults work against the local
# stack (scripts/start-monitoring.sh) when the notebook is opened in JupyterLab.
alert_name = "{alert}"
severity = "{severity}"
labels = {{
    "alertname": "{alert}",
    "job": "ggen-mcp",
    "instance": "127.0.0.1:9464",
}}
annotations = {{}}
starts_at = ""  # ISO 8601; empty: the evaluation time
ends_at = ""  # empty while firing
fingerprint = ""
prometheus_url = __import__("os").environ.get("RUNBOOK_PROMETHEUS_URL", "http://127.0.0.1:9090")
alertmanager_url = "http://127.0.0.1:9093"
at = ""  # evaluation time, ISO 8601; empty: now
lookback_minutes = 15
live = True  # False when replaying a past incident: host and container checks are skipped
log_file = ""  # a log file (or container:NAME, journal:UNIT) to read; empty for none
container = ""  # the service's container name; empty for none
allow_mitigation = False  # mitigation cells act only when this is True
host_snapshot = ""  # a saved host snapshot (JSON) to judge instead of the live host
node_instance = ""  # the node exporter's instance, for the disk panels
memory_limit_bytes = {memory_limit}
temp_dir = "/tmp"
watch_dirs = []
snapshot_dir = ""  # where to save every Prometheus answer (runs set it to the record's data/)
replay_from = ""  # a record's data/ directory: answer queries from it, not from Prometheus
related_alerts = []  # the incident's other alerts (the receiver fills it): listed in the header
incident = {{}}  # what the receiver knows: why this run, earlier investigations, past incidents"""


def _literal(text: str) -> str:
    """A Python string as ruff formats it: double quotes unless the text holds some."""
    return repr(text) if '"' in text and "'" not in text else json.dumps(text)


def panel_call(name: str, window: str = "45m") -> str:
    """`run.panel(...)` for a named panel: its PromQL with `{sel}` for the alert's labels, its
    thresholds from the table, its window, all as literals an engineer can change."""
    panel = PANELS[name]
    queries = panel.promql()
    lines = ["run.panel(", f"    {json.dumps(name)},"]
    if list(queries) in ([""], [panel.title]):
        lines.append(f"    promql={_literal(next(iter(queries.values())))},")
    else:
        lines.append("    promql={")
        lines += [f"        {_literal(k)}: {_literal(q)}," for k, q in queries.items()]
        lines.append("    },")
    if panel.split_by:
        lines.append(f"    by={json.dumps(panel.split_by)},")
    for key, value in (("warn", panel.warn), ("crit", panel.crit)):
        if value is not None:
            lines.append(f"    {key}={value:g},")
    lines += [f"    window={json.dumps(window)},", ")"]
    return "\n".join(lines)


def build(runbook: str) -> nbformat.NotebookNode:
    spec = SPECS[runbook]
    md, code = new_markdown_cell, new_code_cell
    params = code(
        PARAMETERS.format(alert=spec.alert, severity=spec.severity, memory_limit=MEMORY_LIMIT_BYTES)
    )
    params.metadata["tags"] = ["parameters"]
    cells = [
        md(
            f"# Runbook: {spec.title}\n\n{spec.intro}\n\nRun all cells. Each step explains "
            "what it checks; the library `runbook_lib` does the work."
        ),
        params,
        code(f'from runbook_lib import notebook\n\nrun = notebook.start("{runbook}", globals())'),
        md(
            "## Alert\nWhat fired, since when, with which labels; links to Prometheus and "
            "Alertmanager for this window."
        ),
        code("run.header()"),
        md(
            "## Assess\nThe current figures against their thresholds, then the overview: "
            "error rate, latency, cache hit rate and memory. The shaded band is the alert's "
            "firing window."
        ),
        code("run.assess()"),
    ]
    if spec.charts:
        cells += [
            md("The series this runbook looks at most."),
            code(f"run.charts({', '.join(json.dumps(c) for c in spec.charts)})"),
        ]
    cells.append(md("## Investigation\nThe runbook's steps, in its order."))
    defined: set[str] = set()  # a panel's query is written once, where it is first used
    for text, step in spec.steps:
        names = [n for n in step_panels(step, runbook) if n not in defined]
        defined.update(names)
        calls = [panel_call(name) for name in names]
        cells += [md(text), code("\n".join([*calls, f'run.step("{step}")']))]
    cells += [
        md(
            "## Common causes\nEach cause of the runbook, judged from the evidence above: "
            "metrics, logs, and host and container state when they could be read."
        ),
        code("run.causes()"),
        md(
            "## Diagnosis\nThe causes compete on how much of the symptom each explains: the "
            "top cause explains most of it, a cause another mostly explains is at most "
            "possible, and two causes that each explain a real part are both named. The "
            "chart splits the symptom among them; grey is what nothing explains."
        ),
        code("run.diagnosis()"),
        md(
            "## Resolution\nThe runbook's commands for the likely and possible causes, filled "
            "with the values found. They are shown, not run."
        ),
        code("run.resolution()"),
    ]
    for text, action in spec.mitigations:
        cells += [
            md(
                f"**Mitigation.** {text} Acts only with `allow_mitigation = True` on a "
                "live run, and records what it did."
            ),
            code(f'run.mitigate("{action}")'),
        ]
    cells += [
        md("## Communication\nThe incident message of the runbook, filled in."),
        code("run.message()"),
        md("## Post-resolution\nThe runbook's follow-up checks; a query answers those it can."),
        code("run.post_checks()"),
        md("## Summary\nMachine-readable; `runbook summary RECORD --json` prints it."),
        code("summary = run.summary()"),
    ]
    return _notebook(cells, runbook[:20])


POSTMORTEM_PARAMETERS = """\
# Parameters: `runbook postmortem INCIDENT` (or RECORD...) sets them.
records = []  # the incident's record directories (investigation, re-runs, verification)
output_dir = "."  # where the charts and postmortem.md are written
incident = ""  # incident.json: the incident from the index (alerts, runs, actions)"""


def build_postmortem() -> nbformat.NotebookNode:
    """The post-mortem draft: the runbook's template, filled from an incident's records."""
    md, code = new_markdown_cell, new_code_cell
    params = code(POSTMORTEM_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    sections = [
        ("## Summary\nWhat happened, when, for how long, with what impact.", "show_summary"),
        (
            "## Timeline\nEvery alert (pending, fired, ended), escalation, run and operator "
            "action, from the runbook server's index.",
            "show_timeline",
        ),
        (
            "## Root cause\nThe diagnosis of the investigation, with its evidence.",
            "show_root_cause",
        ),
        (
            "## Key charts\nThe four-panel overview, redrawn from the data saved in the "
            "records (not from Prometheus, which may have dropped it).",
            "show_charts",
        ),
        (
            "## Resolution\nThe runbook's commands as the run filled them, and what it did.",
            "show_resolution",
        ),  # fmt: skip
        ("## Verification\nThe post-resolution checks of the follow-up run.", "show_verification"),
    ]
    cells = [
        md(
            "# Post-mortem draft\n\nWritten from the incident's records by "
            "`runbook postmortem`. Fill in the lessons and action items at the end."
        ),
        params,
        code(
            "from runbook_lib.records import postmortem\n\n"
            "pm = postmortem.Draft(records, output_dir, incident)"
        ),
    ]
    for text, method in sections:
        cells += [md(text), code(f"pm.{method}()")]
    cells += [
        md(
            "## Lessons learned\n### What went well\n\n### What went wrong\n\n"
            "### Where we got lucky\n\n## Action items\n| action | owner | due |\n"
            "|---|---|---|\n| | | |"
        ),
        md("The same draft as Markdown, for pasting into a document:"),
        code("pm.write_markdown()"),
    ]
    return _notebook(cells, "postmortem")


def _notebook(cells: list, id_prefix: str) -> nbformat.NotebookNode:
    """A notebook on the python3 kernel with stable cell ids (clean diffs on regeneration)."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell.id = f"{id_prefix}-{i:02d}"
    return nb


def write_all(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for runbook in SPECS:
        path = directory / f"{runbook}.ipynb"
        nbformat.write(build(runbook), path)
        out.append(path)
    path = directory / "postmortem.ipynb"
    nbformat.write(build_postmortem(), path)
    return [*out, path]


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK_DIR):
        print(p)
