"""The runbook's resolution commands of a cause (held by its `Cause`), filled with the values
the run found.

They are shown, not run. Values are shell-quoted, so a label cannot turn a command into
something else when it is pasted.
"""

from __future__ import annotations

import shlex
from typing import Any

from runbook_lib.diagnosis.engine import CAUSES, NO_COMMANDS


def commands(runbook: str, cause: str, values: dict[str, Any]) -> str:
    """The commands for `cause`, with the run's values put in (shell-quoted)."""
    holder = values.get("holder") or {}
    pids = values.get("pids") or []
    fill = {
        "container": shlex.quote(str(values.get("container") or "ggen-mcp-server")),
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
