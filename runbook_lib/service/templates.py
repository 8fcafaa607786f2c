"""The incident pages' HTML: self-contained (no CDN, no script), every value escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from jinja2 import DictLoader, Environment, select_autoescape

BASE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222}
header{background:#1f2937;color:#fff;padding:10px 20px;display:flex;justify-content:space-between}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{display:inline;margin-left:10px}
main{padding:16px 20px}
table{border-collapse:collapse;width:100%;margin:0 0 12px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb}
th{background:#f3f4f6}
.sev-critical{color:#b91c1c;font-weight:600}.sev-warning{color:#b45309;font-weight:600}
.firing{color:#b91c1c}.resolved{color:#15803d}
form.filters{margin:0 0 12px}form.filters *{margin-right:6px}
.links a{margin-right:14px}
.links .runbooks{color:#666;font-size:90%}
.recurrence{color:#b45309}
.context{color:#6b7280;font-size:12px}
.banner{background:#fef3c7;border:1px solid #f59e0b;padding:8px 12px}
#act form{display:inline-block;margin:0 12px 8px 0}
iframe{width:100%;height:78vh;border:1px solid #d1d5db}
</style>{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}</head><body>
<header><a href="/incidents">GGEN MCP incidents</a>{% if who %}<span id="who">signed in as
{{ who.actor }} ({{ who.role }})<form method="post" action="/signout"><button type="submit">Sign out</button></form></span>{% endif %}</header>
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
  <td>{{ i.id }}</td><td>{{ i.fault_starts_at[:19].replace('T', ' ') }}</td>
  <td><a class="incident" href="/incidents/{{ i.id }}">{{ i.alertname }}</a>{% if i.alerts | length > 1 %} <span class="more">+{{ i.alerts | length - 1 }} alerts</span>{% endif %}</td>
  <td class="sev-{{ i.severity }}">{{ i.severity or '-' }}</td>
  <td class="{{ i.status }}">{{ i.status }}</td><td>{{ i.top_cause or '—' }}</td>
  <td>{{ i.duration }}</td><td>{{ i.run_status }}</td></tr>
{% else %}<tr><td colspan="8">No incidents match.</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""

# The operator's forms: each POST carries the session's CSRF token and a one-time nonce.
HIDDEN = """<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="nonce" value="{{ nonce() }}">"""

ACT = """<section id="act"><h3>Act on this incident</h3>
{% if not i.acknowledged_at %}<form method="post" action="/incidents/{{ i.id }}/actions/acknowledge">{% include "hidden" %}
<button type="submit" id="do-acknowledge">Acknowledge</button></form>{% endif %}
{% if not i.mitigated_at %}<form method="post" action="/incidents/{{ i.id }}/actions/mitigated">{% include "hidden" %}
<button type="submit" id="do-mitigated">Mark mitigated</button></form>{% endif %}
<form method="post" action="/incidents/{{ i.id }}/actions/reinvestigate">{% include "hidden" %}
<button type="submit" id="do-reinvestigate">Re-investigate now</button></form>
{% if alertmanager %}<form method="post" action="/incidents/{{ i.id }}/actions/silence">{% include "hidden" %}
<label>Silence its alerts for <select name="duration" id="silence-duration">{% for d in durations %}
<option value="{{ d }}"{% if d == '1h' %} selected{% endif %}>{{ d }}</option>{% endfor %}</select></label>
<button type="submit" id="do-silence">Silence in Alertmanager</button></form>
{% else %}<span>Silencing needs <code>--alertmanager-url</code> on <code>runbook serve</code>.</span>{% endif %}
{% if proposals %}<form method="post" action="/incidents/{{ i.id }}/actions/mitigation">{% include "hidden" %}
<button type="submit" id="do-mitigation">Run the runbook's mitigation: {{ proposals | join('; ') }}</button></form>{% endif %}
</section>"""

DETAIL = """{% extends "base" %}{% block main %}
<h2>#{{ i.id }} {{ i.alertname }} <span class="sev-{{ i.severity }}">{{ i.severity }}</span>
<span class="{{ i.status }}">{{ i.status }}</span></h2>
{% if replay_of %}<p class="banner" id="replay"><b>↻ Replay of {{ replay_of }}</b>: the runbook re-run
on the data that record saved, not a new investigation.</p>{% endif %}
<p>{{ i.annotations.get('summary', '') }}</p>
{% if banner %}<p class="banner" id="banner">{{ banner }}</p>{% endif %}
{% if i.acknowledged_at or i.mitigated_at %}<p id="taken">
{% if i.acknowledged_at %}Acknowledged by <b>{{ i.acknowledged_by }}</b> at {{ when(i.acknowledged_at) }}. {% endif %}
{% if i.mitigated_at %}Mitigation in place since {{ when(i.mitigated_at) }}{% if i.mitigated_by %} (said by <b>{{ i.mitigated_by }}</b>){% endif %}.{% endif %}</p>{% endif %}
{% if i.alerts | length > 1 %}<table id="alerts"><thead><tr><th>alert in this incident</th>
<th>severity</th><th>started (UTC)</th><th>status</th></tr></thead><tbody>
{% for a in i.alerts %}<tr><td>{{ a.alertname }}{% if a.context %} <span class="context" title="a slow-burn alert: context of the fault; it does not hold the incident open">(slow burn)</span>{% endif %}</td><td class="sev-{{ a.severity }}">{{ a.severity or '-' }}</td>
<td>{{ a.starts_at[:19].replace('T', ' ') }}</td><td class="{{ a.status }}">{{ a.status }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
<p>Started {{ i.fault_starts_at[:19].replace('T', ' ') }} UTC · {{ i.duration }} ·
top cause: <b id="top-cause">{{ i.top_cause or 'none likely' }}</b> · communication status: {{ state }}</p>
{% if seen %}<div id="seen-before"><p{% if seen.recurrence %} class="recurrence"{% endif %}><b>{% if seen.recurrence %}⟳ {% endif %}Seen before:</b> {{ headline }}</p>
{% if seen.same %}<p class="links">{% for p in seen.same[:5] %}<a href="/incidents/{{ p.id }}">#{{ p.id }} {{ p.instance }} {{ p.starts_at[:10] }}</a>{% endfor %}</p>{% endif %}</div>{% endif %}
{% if who and who.role == 'operator' and i.status == 'firing' %}{% include "act" %}{% endif %}
<table id="runs"><thead><tr><th>run</th><th>why</th><th>led by</th><th>state</th><th>top cause</th>
<th>record</th></tr></thead><tbody>
{% for r in runs %}<tr class="run-{{ r.kind }}"><td>{{ r.kind }}</td><td>{{ r.why }}{% if r.replay_of %} (replay of {{ r.replay_of }}){% endif %}</td>
<td>{{ r.alertname or '' }}{% if r.severity %} <span class="sev-{{ r.severity }}">({{ r.severity }})</span>{% endif %}</td>
<td>{{ r.shown_state }}</td><td>{{ r.top_cause or '—' }}</td>
<td>{% if r.id == current_id %}shown below{% elif r.has_record %}<a class="followup" href="/records/{{ r.record | urlq }}/report.html">{{ r.kind }}: {{ r.status }}</a>{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% if actions %}<table id="actions"><thead><tr><th>when (UTC)</th><th>who</th><th>did</th>
<th>detail</th></tr></thead><tbody>
{% for a in actions %}<tr class="action-{{ a.kind }}"><td>{{ when(a.at) }}</td><td class="actor">{{ a.actor }}</td>
<td>{{ a.did }}</td><td>{{ a.said }}</td></tr>{% endfor %}</tbody></table>{% endif %}
{% if rec %}<p class="links">
  <a href="/records/{{ rec | urlq }}/record.ipynb" download>Download notebook (.ipynb)</a>
  <a href="/records/{{ rec | urlq }}/record.html">Full record (with code)</a>
  {% if jupyter %}<a href="{{ jupyter }}">Open in JupyterLab</a>{% endif %}
  {% if runbooks %}<span class="runbooks" title="the content hash of the pinned runbooks that made this record">runbooks {{ runbooks }}</span>{% endif %}
  {% if postmortem %}<a id="postmortem" href="/records/{{ postmortem | urlq }}/postmortem.html">Post-mortem draft</a>
  {% else %}</p><form method="post" action="/incidents/{{ i.id }}/postmortem"><input type="hidden" name="csrf" value="{{ csrf }}">
  <button type="submit">Write the post-mortem draft</button></form><p>{% endif %}
</p>
<iframe id="record" src="/records/{{ rec | urlq }}/report.html" title="incident record"></iframe>
{% else %}<p>The investigation is {{ i.run_status }}; this page shows the record once it exists
(it reloads every {{ refresh }} s).</p>
{% endif %}{% endblock %}"""

SIGNIN = """{% extends "base" %}{% block main %}
<h2>Sign in to the incident pages</h2>{% if wrong %}<p class="firing">That is neither the viewer token nor an operator's token.</p>{% endif %}
<form method="post" action="/signin"><input type="hidden" name="next" value="{{ next }}">
<label>Viewer or operator token <input type="password" name="token" autofocus></label>
<button type="submit">Sign in</button></form>
<p>The viewer token (read only) is set by <code>RUNBOOK_VIEWER_TOKEN</code>, or written by <code>runbook serve</code>
to <code>.viewer-token</code> in its output directory. Operators, who may also act on incidents, each get
their own token from <code>runbook operator add NAME</code>.</p>{% endblock %}"""

WAITING = """{% extends "base" %}{% block main %}
<h2>No investigation of {{ alert }}{% if instance %} on {{ instance }}{% endif %} yet</h2>
<p>The alert has not reached this server yet, or it was filed under another name. This page
reloads every {{ refresh }} s and opens the investigation as soon as there is one.</p>{% endblock %}"""

REFUSED = """{% extends "base" %}{% block main %}
<h2>Not done: {{ what }}</h2><p class="firing" id="refused">{{ why }}</p>
<p><a href="/incidents/{{ incident_id }}">Back to incident #{{ incident_id }}</a></p>{% endblock %}"""

ENV = Environment(
    loader=DictLoader(
        {
            "base": BASE,
            "list": LIST,
            "detail": DETAIL,
            "signin": SIGNIN,
            "waiting": WAITING,
            "act": ACT,
            "hidden": HIDDEN,
            "refused": REFUSED,
        }
    ),  # fmt: skip
    autoescape=select_autoescape(default=True, default_for_string=True),
)
ENV.filters["urlq"] = lambda s: quote(str(s))
ENV.globals["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render(name: str, **context: object) -> str:
    return ENV.get_template(name).render(**context)
