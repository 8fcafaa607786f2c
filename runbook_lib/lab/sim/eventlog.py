"""One JSON object per line, to a file and to stdout: what the runbook greps."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path | None, echo: bool = True) -> None:
        self._lock = threading.Lock()
        self._echo = echo
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for life

    def write(self, level: str, event: str, msg: str, **fields: Any) -> None:
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "event": event,
            "msg": msg,
            **fields,
        }
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            if self._fh is not None:
                self._fh.write(line + "\n")
                self._fh.flush()
            if self._echo:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
