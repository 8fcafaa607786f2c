"""The one wait loop of the tests: poll a condition until it holds, or fail naming it.

Tests wait on what they need (a file written, a run done, a page answering), never on a
sleep, so a slow machine makes them slower, not red."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

T = TypeVar("T")
# A service that is still starting refuses connections or has not written its file yet:
# while waiting, these count as "not yet", not as a failure.
NOT_YET = (httpx.HTTPError, OSError)


def wait_for(
    check: Callable[[], T],
    timeout: float,
    what: str,
    every: float = 0.2,
    detail: Callable[[], object] | None = None,
) -> T:
    """Poll `check` until it returns something truthy and return that; on timeout fail
    naming `what`, followed by `detail()` (the state seen last) when given."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except NOT_YET:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    seen = f": {detail()}" if detail is not None else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
