"""What every host check shares: results as lists with `to_frame()`, and errors that name
the source and the reason."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd
import psutil

T = TypeVar("T")
R = TypeVar("R")

IDLE_MIN_AGE_S = 60.0
IDLE_CPU_SHARE = 0.01  # lifetime CPU below 1% of wall time: the process mostly waits
BUSY_CPU_SHARE = 0.10  # more than 10% of a core during the sample: working, not hung
KERN_LOG = Path("/var/log/kern.log")
KERN_LOG_TAIL_BYTES = 16 << 20
OOM_SOURCES = ("dmesg", "kmsg", "kern.log")
OOM_RE = re.compile(r"out of memory|oom-kill|killed process", re.IGNORECASE)


def frame(items: Iterable[Any], item_type: type | None = None) -> pd.DataFrame:
    """A DataFrame of dataclass items, with their `derived` properties as extra columns.

    `item_type` gives the columns when `items` is empty, so an empty result still shows
    what would have been there."""
    rows = list(items)
    cls = type(rows[0]) if rows else item_type
    if cls is None:
        return pd.DataFrame()
    names = [f.name for f in fields(cls)] + list(getattr(cls, "derived", ()))
    return pd.DataFrame([{n: getattr(r, n) for n in names} for r in rows], columns=names)


@dataclass(frozen=True)
class ItemList(Generic[T]):
    """A list-like result: the items found, and what could not be read at all."""

    items: tuple[T, ...] = ()
    error: str | None = None
    item_type: ClassVar[type | None] = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def to_frame(self) -> pd.DataFrame:
        return frame(self.items, self.item_type)


def why(exc: BaseException) -> str:
    """A short reason for a failed read, for the `error` fields."""
    if isinstance(exc, psutil.AccessDenied):
        return "access denied"
    if isinstance(exc, psutil.ZombieProcess):
        return "process is a zombie"
    if isinstance(exc, psutil.NoSuchProcess):
        return "process ended"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"timed out after {exc.timeout:g}s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def join_errors(errors: Sequence[str]) -> str | None:
    return "; ".join(errors) if errors else None
