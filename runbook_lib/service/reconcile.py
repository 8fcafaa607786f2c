"""Closing incidents whose alerts stopped without a `resolved`.

Alertmanager sends `resolved` when an alert ends, but not when it was restarted without its
data, a route changed, or the webhook kept failing until it gave up. On a schedule the
receiver asks Alertmanager which alerts it holds (`/api/v2/alerts`, silenced and inhibited
ones included); an alert firing in the index that Alertmanager has not listed for
`stale_after` seconds is closed as `stale`, and an incident left with no firing alert
closes with it (incidents/grouping.py says why the grace is long). When Alertmanager does not
answer, nothing changes."""

from __future__ import annotations

import asyncio
import logging

import httpx
from starlette.concurrency import run_in_threadpool

from runbook_lib.incidents.index import Index

log = logging.getLogger("runbook.reconcile")
QUERY = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}


def active_fingerprints(alertmanager_url: str, timeout: float = 10.0) -> set[str]:
    """The fingerprints of the alerts Alertmanager holds now; httpx.HTTPError or ValueError
    when it cannot say."""
    resp = httpx.get(f"{alertmanager_url.rstrip('/')}/api/v2/alerts", params=QUERY, timeout=timeout)
    resp.raise_for_status()
    return {a["fingerprint"] for a in resp.json()}


def reconcile_once(index: Index, alertmanager_url: str, stale_after_s: float) -> list[int]:
    """One pass: the incidents it closed as stale."""
    return index.close_stale(active_fingerprints(alertmanager_url), grace_s=stale_after_s)


async def reconcile_forever(
    index: Index, alertmanager_url: str, every_s: float, stale_after_s: float
) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            closed = await run_in_threadpool(reconcile_once, index, alertmanager_url, stale_after_s)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, try again next time
            log.warning("could not reconcile with Alertmanager at %s: %s; nothing closed",
                        alertmanager_url, exc)  # fmt: skip
            continue
        if closed:
            ids = ", ".join(f"#{i}" for i in closed)
            log.info("closed %s as stale (Alertmanager no longer has their alerts)", ids,
                     extra={"event": "stale", "incident_ids": closed})  # fmt: skip
