"""Incident pages of `runbook serve`: find and read incidents in a browser, no Jupyter.

`/incidents` lists them with filters; `/incidents/<id>` shows the rendered record with its
charts and links (notebook download, JupyterLab, follow-ups, post-mortem), its runs in order
(an escalation's investigation beside the earlier one), what operators did, and, to
operators, the action buttons (service/actions.py); `/incidents/latest?alertname=...&instance=...`
(the alert rules' `runbook_url`) leads to the newest investigation of that alert. Who may
read and who may act is service/access.py: the viewer token reads, operators' own tokens
act, as a bearer header or typed once into `/signin`. Files are served only from inside the
output directory.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from runbook_lib.contract.config import Settings
from runbook_lib.contract.settings import ROOT
from runbook_lib.contract.summary import Summary
from runbook_lib.incidents.index import Index
from runbook_lib.notebook import recurrence
from runbook_lib.service import incident_view, silences
from runbook_lib.service.access import Access, Who, read_form
from runbook_lib.service.templates import render

REFRESH_S = 10  # pages waiting for an investigation reload this often
MAX_HOURS = 24 * 366 * 10  # the list's time filter: ten years back at most
# SQLite's integer range: a larger id is no incident, not a crash.
IncidentId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]


def router(index: Index, access: Access, settings: Settings) -> APIRouter:
    """The pages of the records in the settings' `output_dir`, readable by `access.viewer`;
    operators also see the action buttons (the silence only with an `alertmanager_url`).
    Post-mortems ask `prometheus_url` when the incident's alerts went pending; records link
    to JupyterLab at `jupyter_url`."""
    out = Path(settings.output_dir).resolve()
    alertmanager_url, prometheus_url = settings.alertmanager_url, settings.prometheus_url
    jupyter_url = settings.jupyter_url
    r = APIRouter()
    viewer = Depends(access.viewer)
    writing: dict[int, asyncio.Lock] = {}  # post-mortem drafts being written, per incident

    @r.get("/signin", response_class=HTMLResponse)
    def signin_page(next: str = "/incidents") -> Response:
        return HTMLResponse(render("signin", title="Sign in", next=_local(next), wrong=False))

    @r.post("/signin", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        form = await read_form(request)
        nxt = _local(form.get("next", "/incidents"))
        if access.sign_in(request, form.get("token", "")) is None:
            page = render("signin", title="Sign in", next=nxt, wrong=True)
            return HTMLResponse(page, status_code=401)
        return RedirectResponse(nxt, status_code=303)

    @r.post("/signout")
    def signout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    @r.get("/incidents/latest", response_class=HTMLResponse)
    def latest(alertname: str = "", instance: str = "", who: Who = viewer) -> Response:
        if not alertname:
            raise HTTPException(422, "/incidents/latest needs ?alertname= (and ?instance=)")
        found = index.latest(alertname, instance or None)
        if found is not None:
            return RedirectResponse(f"/incidents/{found}", status_code=303)
        page = render("waiting", title=f"{alertname}: waiting", alert=alertname,
                      instance=instance, refresh=REFRESH_S, who=who)  # fmt: skip
        return HTMLResponse(page)

    @r.get("/incidents", response_class=HTMLResponse)
    def incidents(
        alert: str = "",
        status: str = Query("", pattern="^(|firing|resolved|stale|manual)$"),
        since_hours: int = Query(0, ge=0, le=MAX_HOURS),
        who: Who = viewer,
    ) -> Response:
        since = time.time() - since_hours * 3600 if since_hours > 0 else None
        rows = listed(index, alert, status, since)
        f = {"alert": alert, "status": status, "since_hours": since_hours}
        return HTMLResponse(render("list", title="Incidents", incidents=rows, f=f, who=who))

    @r.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def incident(request: Request, incident_id: IncidentId, who: Who = viewer) -> Response:
        from runbook_lib.incidents import postmortem

        try:
            inc = incident_view.load(index, incident_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        inv = inc.investigation
        rec = inv.record if inv and (out / inv.record).is_dir() else None
        records = postmortem.incident_records(inc, out)
        written = postmortem.default_output(records) if records else None
        pm = written.name if written and written.is_dir() else None
        banner = incident_view.pending(inc)
        runs = [
            {**dict(run), "why": incident_view.why(run), "shown_state": incident_view.run_state(run),
             "has_record": run.state == "done" and (out / run.record).is_dir(),
             "replay_of": replay_of(out / run.record)}
            for run in inc.runs
        ]  # fmt: skip
        seen = incident_view.memory(index, inc)
        acting = who.operator and inc.status == "firing"
        proposals = incident_view.proposals(out, inc) if acting else []
        page = render(
            "detail",
            title=f"#{inc.id} {inc.alertname}",
            i=inc,
            rec=rec,
            state=incident_view.state(inc),
            postmortem=pm,
            jupyter=_jupyter_link(jupyter_url, out / rec / "record.ipynb") if rec else "",
            refresh=REFRESH_S if banner or not rec else None,
            banner=banner,
            seen=seen,
            headline=recurrence.headline(seen),
            runs=runs,
            replay_of=replay_of(out / rec) if rec else "",
            current_id=inv.id if inv and rec else None,
            actions=incident_view.action_lines(inc),
            who=who,
            csrf=access.csrf(request),
            nonce=lambda: secrets.token_urlsafe(16),
            durations=silences.CHOICES,
            alertmanager=bool(alertmanager_url),
            proposals=[f"{p['action']} (would {p['would']})" for p in proposals],
            runbooks=_runbooks_hash(out / rec) if rec else "",
        )
        return HTMLResponse(page)

    @r.post("/incidents/{incident_id}/postmortem")
    async def write_postmortem(
        request: Request, incident_id: IncidentId, who: Who = viewer
    ) -> Response:
        """Any reader may write the draft (a document from the records), from this site's
        form only, one at a time per incident (it runs a notebook)."""
        from runbook_lib.incidents import postmortem

        form = await read_form(request)
        access.check_form(request, who, form.get("csrf", ""))
        busy = writing.setdefault(incident_id, asyncio.Lock())
        if busy.locked():
            raise HTTPException(409, f"the post-mortem draft of incident {incident_id} is "
                                "being written; reload the page in a moment")  # fmt: skip
        try:
            async with busy:
                await run_in_threadpool(
                    postmortem.for_incident, index, incident_id, out,
                    prometheus_url=prometheus_url,
                )  # fmt: skip
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValueError as exc:  # no finished record yet
            raise HTTPException(409, str(exc)) from exc
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @r.get("/records/{path:path}")
    def record_file(path: str, who: Who = viewer) -> Response:
        try:
            target = (out / path).resolve()
            found = target.is_relative_to(out) and target != out and target.is_file()
        except (ValueError, OSError):  # a NUL byte, a name too long for the file system
            found = False
        if not found:
            raise HTTPException(404, f"no such record file: {path}")
        parts = target.relative_to(out).parts
        if len(parts) < 2 or any(p.startswith(".") for p in parts):
            # only files inside a record (or post-mortem) directory: never the index,
            # notify.yml (its URLs hold webhook secrets) or anything else at the top
            raise HTTPException(404, f"no such record file: {path}")
        return FileResponse(target)

    return r


def _runbooks_hash(rec: Path) -> str:
    """Which pinned runbooks made the record (execution/pinning.py); empty for a record made
    by hand or before runbooks were pinned."""
    from runbook_lib.records import record

    try:
        return record.summary(rec).runbooks_hash or ""
    except (OSError, ValueError):
        return ""


def _local(target: str) -> str:
    """A redirect target on this server only: a path, never another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/incidents"
    return target


def listed(
    index: Index, alert: str, status: str, since: float | None
) -> list[incident_view.Described]:
    return [
        incident_view.describe(r)
        for r in index.incidents(500, alert=alert, status=status, since=since)
    ]


def replay_of(record_dir: Path) -> str:
    """The record a replay re-ran (`replay_of` in its summary.json), else ''."""
    try:
        return Summary.load(record_dir / "summary.json").replay_of or ""
    except (OSError, ValueError):
        return ""


def _jupyter_link(base: str, notebook: Path) -> str:
    if not base:
        return ""
    try:
        rel = notebook.resolve().relative_to(ROOT)
    except ValueError:
        return ""  # JupyterLab serves the project directory; records elsewhere are not in it
    return f"{base.rstrip('/')}/lab/tree/{quote(str(rel))}"
