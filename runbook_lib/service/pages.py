"""Incident pages of `runbook serve`: find and read incidents in a browser, no Jupyter.

`/incidents` lists them with filters; `/incidents/<id>` shows the rendered record with its
charts and links (notebook download, JupyterLab, follow-ups, post-mortem);
`/incidents/latest?alertname=...&instance=...` (the alert rules' `runbook_url`) leads to the
newest investigation of that alert. Viewing has its own credential, the viewer token: as a
bearer header, or typed once into `/signin`, which keeps a signed session cookie (never the
token itself). The webhook token opens the pages only when the server is told so. Files are
served only from inside the output directory.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.concurrency import run_in_threadpool

from runbook_lib.contract.config import ROOT
from runbook_lib.records.index import Index
from runbook_lib.service import incident_view

SESSION_COOKIE = "runbook_session"
REFRESH_S = 10  # pages waiting for an investigation reload this often
MAX_FORM_BYTES = 4096
MAX_HOURS = 24 * 366 * 10  # the list's time filter: ten years back at most
# SQLite's integer range: a larger id is no incident, not a crash.
IncidentId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]

BASE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222}
header{background:#1f2937;color:#fff;padding:10px 20px}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:16px 20px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb}
th{background:#f3f4f6}
.sev-critical{color:#b91c1c;font-weight:600}.sev-warning{color:#b45309;font-weight:600}
.firing{color:#b91c1c}.resolved{color:#15803d}
form.filters{margin:0 0 12px}form.filters *{margin-right:6px}
.links a{margin-right:14px}
iframe{width:100%;height:78vh;border:1px solid #d1d5db}
</style>{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}</head><body><header><a href="/incidents">GGEN MCP incidents</a></header>
<main>{% block main %}{% endblock %}</main></body></html>"""

LIST = """{% extends "base" %}{% block main %}
<form class="filters" method="get" action="/incidents">
  <input name="alert" placeholder="alert name" value="{{ f.alert or '' }}">
  <select name="status">{% for s in ['', 'firing', 'resolved', 'stale', 'manual'] %}
    <option value="{{ s }}"{% if f.status == s %} selected{% endif %}>{{ s or 'any status' }}</option>
  {% endfor %}</select>
  <select name="since_hours">{% for h, label in [(0, 'any time'), (1, 'last hour'), (24, 'last day'), (168, 'last week')] %}
    <option value="{{ h }}"{% if f.since_hours == h %} selected{% endif %}>{{ label }}</option>
  {% endfor %}</select>
  <button type="submit">Filter</button>
</form>
<table id="incidents"><thead><tr><th>#</th><th>started (UTC)</th><th>alert</th><th>severity</th>
<th>status</th><th>top cause</th><th>duration</th><th>run</th></tr></thead><tbody>
{% for i in incidents %}<tr>
  <td>{{ i.id }}</td><td>{{ i.starts_at[:19].replace('T', ' ') }}</td>
  <td><a class="incident" href="/incidents/{{ i.id }}">{{ i.alertname }}</a>{% if i.alerts | length > 1 %} <span class="more">+{{ i.alerts | length - 1 }} alerts</span>{% endif %}</td>
  <td class="sev-{{ i.severity }}">{{ i.severity or '-' }}</td>
  <td class="{{ i.status }}">{{ i.status }}</td><td>{{ i.top_cause or '—' }}</td>
  <td>{{ i.duration }}</td><td>{{ i.run_status }}</td></tr>
{% else %}<tr><td colspan="8">No incidents match.</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""

DETAIL = """{% extends "base" %}{% block main %}
<h2>#{{ i.id }} {{ i.alertname }} <span class="sev-{{ i.severity }}">{{ i.severity }}</span>
<span class="{{ i.status }}">{{ i.status }}</span></h2>
<p>{{ i.annotations.get('summary', '') }}</p>
{% if i.alerts | length > 1 %}<table id="alerts"><thead><tr><th>alert in this incident</th>
<th>severity</th><th>started (UTC)</th><th>status</th></tr></thead><tbody>
{% for a in i.alerts %}<tr><td>{{ a.alertname }}</td><td class="sev-{{ a.severity }}">{{ a.severity or '-' }}</td>
<td>{{ a.starts_at[:19].replace('T', ' ') }}</td><td class="{{ a.status }}">{{ a.status }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
<p>Started {{ i.starts_at[:19].replace('T', ' ') }} UTC · {{ i.duration }} ·
top cause: <b id="top-cause">{{ i.top_cause or 'none likely' }}</b> · communication status: {{ state }}</p>
{% if rec %}<p class="links">
  <a href="/records/{{ rec | urlq }}/record.ipynb" download>Download notebook (.ipynb)</a>
  <a href="/records/{{ rec | urlq }}/record.html">Full record (with code)</a>
  {% if jupyter %}<a href="{{ jupyter }}">Open in JupyterLab</a>{% endif %}
  {% for f in i.followups %}{% if f.state == 'done' %}
  <a class="followup" href="/records/{{ f.record | urlq }}/report.html">{{ f.kind }}: {{ f.status }}</a>
  {% else %}<span>{{ f.kind }}: {{ f.state }}</span>{% endif %}{% endfor %}
  {% if postmortem %}<a id="postmortem" href="/records/{{ postmortem | urlq }}/postmortem.html">Post-mortem draft</a>
  {% else %}</p><form method="post" action="/incidents/{{ i.id }}/postmortem">
  <button type="submit">Write the post-mortem draft</button></form><p>{% endif %}
</p>
<iframe id="record" src="/records/{{ rec | urlq }}/report.html" title="incident record"></iframe>
{% else %}<p>The investigation is {{ i.run_status }}; this page shows the record once it exists
(it reloads every {{ refresh }} s).</p>
{% endif %}{% endblock %}"""

SIGNIN = """{% extends "base" %}{% block main %}
<h2>Sign in to the incident pages</h2>{% if wrong %}<p class="firing">That is not the viewer token.</p>{% endif %}
<form method="post" action="/signin"><input type="hidden" name="next" value="{{ next }}">
<label>Viewer token <input type="password" name="token" autofocus></label>
<button type="submit">Sign in</button></form>
<p>The viewer token is set by <code>RUNBOOK_VIEWER_TOKEN</code>, or written by <code>runbook serve</code>
to <code>.viewer-token</code> in its output directory.</p>{% endblock %}"""

WAITING = """{% extends "base" %}{% block main %}
<h2>No investigation of {{ alert }}{% if instance %} on {{ instance }}{% endif %} yet</h2>
<p>The alert has not reached this server yet, or it was filed under another name. This page
reloads every {{ refresh }} s and opens the investigation as soon as there is one.</p>{% endblock %}"""

ENV = Environment(
    loader=DictLoader(
        {"base": BASE, "list": LIST, "detail": DETAIL, "signin": SIGNIN, "waiting": WAITING}
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
ENV.filters["urlq"] = lambda s: quote(str(s))


def router(index: Index, output_dir: Path, tokens: list[str], jupyter_url: str = "") -> APIRouter:
    """The pages; `tokens` are the credentials that may view them (the viewer token, and
    the webhook token only when the server was told to accept it)."""
    out = output_dir.resolve()
    r = APIRouter()

    def matches(given: str) -> bool:
        return any(given and hmac.compare_digest(given.encode(), t.encode()) for t in tokens)

    # A session names the token it was opened with (by a digest): a new viewer token ends it.
    current = {hashlib.sha256(t.encode()).hexdigest()[:32] for t in tokens}

    def guard(request: Request) -> Response | None:
        """None when the request may see the page; else where to sign in (a browser) or 401."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if matches(bearer) or request.session.get("viewer") in current:
            return None
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
        raise HTTPException(401, "the incident pages need the viewer token (a bearer header, "
                            "or sign in at /signin)")  # fmt: skip

    @r.get("/signin", response_class=HTMLResponse)
    def signin_page(next: str = "/incidents") -> Response:
        page = ENV.get_template("signin").render(title="Sign in", next=_local(next), wrong=False)
        return HTMLResponse(page)

    @r.post("/signin", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise HTTPException(413, f"the sign-in form is over {MAX_FORM_BYTES} bytes")
        form = parse_qs(body.decode("utf-8", "replace"))
        token, nxt = form.get("token", [""])[0], _local(form.get("next", ["/incidents"])[0])
        if not matches(token):
            page = ENV.get_template("signin").render(title="Sign in", next=nxt, wrong=True)
            return HTMLResponse(page, status_code=401)
        request.session.clear()
        request.session["viewer"] = hashlib.sha256(token.encode()).hexdigest()[:32]
        return RedirectResponse(nxt, status_code=303)

    @r.post("/signout")
    def signout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    @r.get("/incidents/latest", response_class=HTMLResponse)
    def latest(request: Request, alertname: str = "", instance: str = "") -> Response:
        if redirect := guard(request):
            return redirect
        if not alertname:
            raise HTTPException(422, "/incidents/latest needs ?alertname= (and ?instance=)")
        found = index.latest(alertname, instance or None)
        if found is not None:
            return RedirectResponse(f"/incidents/{found}", status_code=303)
        page = ENV.get_template("waiting").render(
            title=f"{alertname}: waiting", alert=alertname, instance=instance, refresh=REFRESH_S
        )
        return HTMLResponse(page)

    @r.get("/incidents", response_class=HTMLResponse)
    def incidents(
        request: Request,
        alert: str = "",
        status: str = Query("", pattern="^(|firing|resolved|stale|manual)$"),
        since_hours: int = Query(0, ge=0, le=MAX_HOURS),
    ) -> Response:
        if redirect := guard(request):
            return redirect
        since = time.time() - since_hours * 3600 if since_hours > 0 else None
        rows = listed(index, alert, status, since)
        f = {"alert": alert, "status": status, "since_hours": since_hours}
        return HTMLResponse(ENV.get_template("list").render(title="Incidents", incidents=rows, f=f))

    @r.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def incident(request: Request, incident_id: IncidentId) -> Response:
        if redirect := guard(request):
            return redirect
        try:
            inc = incident_view.load(index, incident_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        inv = inc["investigation"]
        rec = inv["record"] if inv and (out / inv["record"]).is_dir() else None
        pm = f"postmortem-{rec}" if rec and (out / f"postmortem-{rec}").is_dir() else None
        page = ENV.get_template("detail").render(
            title=f"#{inc['id']} {inc['alertname']}",
            i=inc,
            rec=rec,
            state=incident_view.state(inc),
            postmortem=pm,
            jupyter=_jupyter_link(jupyter_url, out / rec / "record.ipynb") if rec else "",
            refresh=None if rec else REFRESH_S,
        )
        return HTMLResponse(page)

    @r.post("/incidents/{incident_id}/postmortem")
    async def write_postmortem(request: Request, incident_id: IncidentId) -> Response:
        if redirect := guard(request):
            return redirect
        from runbook_lib.records import postmortem

        records = postmortem.incident_records(index, out, incident_id)
        if not records:
            raise HTTPException(409, f"incident {incident_id} has no finished record yet")
        await run_in_threadpool(postmortem.write, records)
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @r.get("/records/{path:path}")
    def record_file(request: Request, path: str) -> Response:
        if redirect := guard(request):
            return redirect
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


def _local(target: str) -> str:
    """A redirect target on this server only: a path, never another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/incidents"
    return target


def listed(index: Index, alert: str, status: str, since: float | None) -> list[dict]:
    return [
        incident_view.describe(r)
        for r in index.incidents(500, alert=alert, status=status, since=since)
    ]


def _jupyter_link(base: str, notebook: Path) -> str:
    if not base:
        return ""
    try:
        rel = notebook.resolve().relative_to(ROOT)
    except ValueError:
        return ""  # JupyterLab serves the project directory; records elsewhere are not in it
    return f"{base.rstrip('/')}/lab/tree/{quote(str(rel))}"
