"""Operator actions on an incident: `POST /incidents/{id}/actions/{kind}`.

Acknowledge, mark mitigated, re-investigate now, silence in Alertmanager, and run the
runbook's guarded mitigation when its investigation proposed one. Only operators act
(`Depends(access.operator)`); a browser's form carries the session's CSRF token and a
one-time nonce, so a forged or replayed POST changes nothing. Each action is written with its
actor and time by `Index.act` (incidents/actions.py), in one transaction with what it changes
and the event that tells the team. A refusal names what failed: 404 (no such incident or
action), 409 (closed, done already, replayed, nothing to do), 422 (bad input), 502
(Alertmanager refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from runbook_lib.incidents.actions import KINDS, Closed, Done, DoneAlready, Replayed
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import Queued
from runbook_lib.service import silences
from runbook_lib.service.access import Access, Who, read_form
from runbook_lib.service.incident_view import proposals
from runbook_lib.service.pages import IncidentId
from runbook_lib.service.templates import render

WHAT = {  # as a person says it: "Not done: acknowledge"
    "acknowledge": "acknowledge",
    "mitigated": "mark mitigated",
    "reinvestigate": "re-investigate",
    "silence": "silence in Alertmanager",
    "mitigation": "run the runbook's mitigation",
}


class ActionForm(BaseModel):
    """What an action's form sends (a bearer script may send only what its action needs)."""

    model_config = ConfigDict(extra="ignore")

    csrf: str = ""
    nonce: str = Field("", max_length=128)
    duration: str = Field("", max_length=32)


@dataclass
class Actions:
    """Carries out one action; every refusal is an HTTPException naming what failed."""

    index: Index
    output_dir: Path
    alertmanager_url: str
    verify_delay: float

    def perform(self, incident_id: int, kind: str, who: Who, form: ActionForm, page: str) -> Done:
        nonce = form.nonce or None
        detail: dict[str, Any] = {}
        silence = None
        self._may_act(incident_id, nonce)
        if kind == "mitigation":
            found = proposals(self.output_dir, self.index.incident(incident_id))
            if not found:
                raise HTTPException(409, f"incident {incident_id}: its investigation proposed "
                                    "no mitigation to run")  # fmt: skip
            detail["mitigations"] = [p["action"] for p in found]
        if kind == "silence":
            silence = self._silence(incident_id, who, form.duration, page)
            detail.update(silence_id=silence.id, duration=form.duration.strip(),
                          ends_at=silence.ends_at.isoformat(timespec="seconds"))  # fmt: skip
        try:
            return self.index.act(incident_id, kind, who.actor, nonce=nonce, detail=detail,
                                  verify_delay=self.verify_delay)  # fmt: skip
        except BaseException as exc:
            if silence is not None:  # not recorded after all: no silence nobody knows of
                silences.expire(self.alertmanager_url, silence.id)
            if isinstance(exc, LookupError | Closed | DoneAlready | Replayed):
                raise _refusal(exc) from exc
            raise

    def _may_act(self, incident_id: int, nonce: str | None) -> None:
        try:
            self.index.may_act(incident_id, nonce)
        except (LookupError, Closed, Replayed) as exc:
            raise _refusal(exc) from exc

    def _silence(self, incident_id: int, who: Who, text: str, page: str) -> silences.Silence:
        try:
            span = silences.duration(text)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not self.alertmanager_url:
            raise HTTPException(409, "no Alertmanager is configured: start `runbook serve` with "
                                "--alertmanager-url (RUNBOOK_ALERTMANAGER_URL) to silence "
                                "from here")  # fmt: skip
        inc = self.index.incident(incident_id)
        names = [a.alertname for a in inc.alerts] or [inc.alertname]
        comment = (f"runbook incident #{incident_id} ({inc.alertname} on "
                   f"{inc.instance or 'no instance'}), silenced by {who.actor}: {page}")  # fmt: skip
        try:
            return silences.create(self.alertmanager_url, alertnames=names,
                                   instance=inc.instance, span=span,
                                   created_by=who.actor, comment=comment)  # fmt: skip
        except silences.SilenceError as exc:
            raise HTTPException(502, str(exc)) from exc


def _refusal(exc: Exception) -> HTTPException:
    if isinstance(exc, LookupError):
        return HTTPException(404, str(exc))
    return HTTPException(409, str(exc))


def router(actions: Actions, access: Access, wake: Callable[[list[Queued]], None]) -> APIRouter:
    """The action route; `wake` gets the runs an action queued (workers start them now)."""
    r = APIRouter()

    @r.post("/incidents/{incident_id}/actions/{kind}")
    async def act(
        request: Request, incident_id: IncidentId, kind: str, who: Who = Depends(access.operator)
    ) -> Response:
        if kind not in KINDS:
            raise HTTPException(404, f"no action {kind!r}; actions: {', '.join(KINDS)}")
        try:
            form = ActionForm.model_validate(await read_form(request))
            if not form.nonce and (key := request.headers.get("idempotency-key", "")):
                form = form.model_copy(update={"nonce": key[:128]})  # a script's retry
        except ValidationError as exc:
            raise HTTPException(422, f"the form's {exc.errors()[0]['loc'][0]}: "
                                f"{exc.errors()[0]['msg']}") from exc  # fmt: skip
        try:
            access.check_form(request, who, form.csrf)
            if who.session and not form.nonce:
                raise HTTPException(422, "the form has no nonce: reload the incident page")
            page = f"{str(request.base_url).rstrip('/')}/incidents/{incident_id}"
            done = await run_in_threadpool(actions.perform, incident_id, kind, who, form, page)
        except HTTPException as exc:
            if not who.session:
                raise
            html = render("refused", title="Not done", what=WHAT[kind], why=exc.detail,
                          incident_id=incident_id, who=who)  # fmt: skip
            return HTMLResponse(html, status_code=exc.status_code)
        if done.queued:
            await run_in_threadpool(wake, done.queued)
        if who.session:
            return RedirectResponse(f"/incidents/{incident_id}#actions", status_code=303)
        a = done.action
        return JSONResponse({"action": a.id, "kind": a.kind, "actor": a.actor, "at": a.at,
                             "detail": a.detail, "run_id": a.run_id})  # fmt: skip

    return r
