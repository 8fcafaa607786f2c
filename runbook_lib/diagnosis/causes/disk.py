"""Disk usage: logs, Prometheus data or temp files growing."""

from __future__ import annotations

from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.diagnosis.constants import OLD_TEMP_FILES
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.facts import (
    explains,
    host_fact,
)
from runbook_lib.diagnosis.model import Evidence, Fact

DISK_DIRS = {
    "log_files_growing": "/var/log/ggen-mcp",
    "prometheus_data_growing": "/var/lib/prometheus",
    "temp_files_not_cleaned": "/tmp",
}


@attributes("disk_usage", needs=("host",))
def disk_attribution(ev: Evidence) -> Attribution | None:
    """The disk's growth per hour, split by the directory that grows."""
    growth = (ev.host or {}).get("dir_growth_bytes_per_h") or {}
    total = sum(max(0.0, g) for g in growth.values())
    if total <= 0:
        return None
    att = Attribution(
        "disk_usage", "GB/h the disk grows by", total, tuple(DISK_DIRS), scale=1e9, digits=2
    )
    for cause, path in DISK_DIRS.items():
        att.claim(cause, max(0.0, growth.get(path, 0.0)), f"{path}")
    return att


def _disk_rule(cause: str, path: str):
    def facts(ev: Evidence) -> list[Fact]:
        out = [
            host_fact(
                ev,
                lambda h: _grows_most(h, path),
                lambda h: _growth_text(h, path),
                weight=3,
                required=True,
                what=f"growth of {path}",
            ),
            explains(ev, cause, at_least=LITTLE),
        ]
        if cause == "temp_files_not_cleaned":
            out.append(
                host_fact(
                    ev,
                    lambda h: (
                        h["temp_files"]["old_count"] >= OLD_TEMP_FILES
                        if "temp_files" in h
                        else None
                    ),
                    lambda h: (
                        f"{h['temp_files']['old_count']} ggen-mcp-* temp files are older than a day"
                    ),
                    weight=2,
                    what="old temp files",
                )
            )
        return out

    return facts


def _grows_most(h: dict, path: str) -> bool | None:
    growth = h.get("dir_growth_bytes_per_h") or h.get("dirs")
    if not growth or path not in growth:
        return None
    return max(growth, key=growth.get) == path


def _growth_text(h: dict, path: str) -> str:
    if h.get("dir_growth_bytes_per_h"):
        g = h["dir_growth_bytes_per_h"]
        return f"{path} grows {g[path] / 1e9:.1f} GB/h; fastest is {max(g, key=g.get)}"
    d = h["dirs"]
    return f"{path} holds {d[path] / 1e9:.1f} GB; largest is {max(d, key=d.get)}"


DISK_COMMANDS = {  # the runbook's resolution commands per cause
    "log_files_growing": (
        "logrotate /etc/logrotate.d/ggen-mcp\n"
        "find /var/log/ggen-mcp -name '*.log' -mtime +7 -delete"
    ),
    "prometheus_data_growing": (
        "du -sh /var/lib/prometheus\n# lower --storage.tsdb.retention.time (e.g. 15d), restart"
    ),
    "temp_files_not_cleaned": (
        "find {temp_dir} -name 'ggen-mcp-*' -mtime +1\n"
        "find {temp_dir} -name 'ggen-mcp-*' -mtime +1 -delete"
    ),
}

for _cause, _path in DISK_DIRS.items():
    rule(
        "disk_usage",
        _cause,
        commands=DISK_COMMANDS[_cause],
        mitigation="clean_temp_files" if _cause == "temp_files_not_cleaned" else None,
    )(_disk_rule(_cause, _path))
