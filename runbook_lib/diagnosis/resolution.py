"""The runbook's resolution commands of a cause (held by its `Cause`), filled with the values
the run found.

They are shown, not run. Values are shell-quoted, so a label cannot turn a command into
something else when it is pasted.
"""

from __future__ import annotations

import shlex
from typing import Any

from runbook_lib.diagnosis.engine import CAUSES
from runbook_lib.diagnosis.model import NO_COMMANDS

CONTAINER = "<CONTAINER>"  # no container configured: the reader fills it in


def container_ref(container: str) -> str:
    """The container as a shell word: its name, or for `label:K=V` the newest running
    container with that label, found when the command runs."""
    if container.startswith("label:"):
        label = shlex.quote(container.removeprefix("label:"))
        return f"$(docker ps -q --filter label={label} | head -n1)"
    return shlex.quote(container)


def _unit(values: dict[str, Any]) -> str:
    """The systemd unit of the configured journal source, if any."""
    for spec in values.get("log_sources") or ():
        if spec.startswith("journal:"):
            return spec.removeprefix("journal:").partition("@")[0]
    return ""


def logs_command(values: dict[str, Any]) -> str:
    """How to read the service's logs where this installation keeps them (runbook.toml's
    container, log_unit or log_file), never a container named from nothing."""
    if values.get("container"):
        return f"docker logs {container_ref(str(values['container']))} 2>&1"
    if unit := _unit(values):
        return f"journalctl -u {shlex.quote(unit)} --since -1h"
    files = [s for s in values.get("log_sources") or () if ":" not in s.partition("/")[0]]
    if files:  # zcat -f reads plain and compressed rotations alike; a glob stays a glob
        return "zcat -f " + " ".join(
            s if any(c in s for c in "*?[") else shlex.quote(s) for s in files
        )
    return f"docker logs {CONTAINER} 2>&1"


def restart_command(values: dict[str, Any]) -> str:
    if values.get("container"):
        return f"docker restart {container_ref(str(values['container']))}"
    if unit := _unit(values):
        return f"systemctl restart {shlex.quote(unit)}"
    return f"docker restart {CONTAINER}   # or: systemctl restart <UNIT>"


def commands(runbook: str, cause: str, values: dict[str, Any]) -> str:
    """The commands for `cause`, with the run's values put in (shell-quoted)."""
    holder = values.get("holder") or {}
    pids = values.get("pids") or []
    fill = {
        "container": shlex.quote(str(values["container"]))
        if values.get("container")
        else CONTAINER,
        "logs": logs_command(values),
        "restart": restart_command(values),
        "port": int(values.get("port") or 9464),
        "pids": " ".join(str(int(p)) for p in pids[:20]) or "<PID>",
        "temp_dir": shlex.quote(str(values.get("temp_dir") or "/tmp")),
        "holder_pid": int(holder["pid"]) if holder.get("pid") else "<PID>",
        "holder_name": shlex.quote(str(holder.get("name") or "unknown")),
        "service_pid": int(values["service_pid"]) if values.get("service_pid") else "<PID>",
    }
    found = CAUSES.get(cause)
    template = found.commands if found else NO_COMMANDS
    return template.format(**fill)
