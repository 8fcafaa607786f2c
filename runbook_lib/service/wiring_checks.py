"""The wiring checks of `runbook doctor`: Prometheus loads the rules and has scraped GGEN MCP,
Alertmanager sends the alerts here with the token, and the receiver answers and accepts it.
Each failed check carries the command or setting that fixes it; the parsing is pure (it
reads the JSON or YAML the services answer), the fetching is separate."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from runbook_lib.contract.config import ConfigError, Settings, config_path
from runbook_lib.service import rulefiles, wiring

NEVER = "0001-01-01T00:00:00Z"  # Prometheus' lastScrape of a target it has not scraped yet
TIMEOUT = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # on failure: the command or setting that fixes it
    skipped: bool = False  # not configured, so not judged
    warn: bool = False  # worth knowing, but the wiring works without it


def skip(name: str, why: str) -> Check:
    return Check(name, True, why, skipped=True)


# -- Prometheus: rules and the first scrape ------------------------------------------------
def expected_rules(profile: str) -> tuple[set[str], set[str]]:
    """(alert names, recording rule names) of the rule files Prometheus must load."""
    alerts, records = set(), set()
    for path in rulefiles.sources(profile).values():
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    alerts.add(rule["alert"])
                elif "record" in rule:
                    records.add(rule["record"])
    return alerts, records


def _loaded(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in answer.get("data", {}).get("groups", []) for r in g.get("rules", [])]


def rules_checks(answer: dict[str, Any], profile: str, links: str, rules_dir: Path) -> list[Check]:
    """Prometheus' /api/v1/rules against the rule files of `profile` rendered into
    `rules_dir`: all loaded, linking to `links` (this receiver as people reach it), and
    rendered by this package version."""
    loaded = _loaded(answer)
    names = {r.get("name") for r in loaded}
    alerts, records = expected_rules(profile)
    missing = sorted((alerts | records) - names)
    said = (f"{len(alerts & names)} of {len(alerts)} alert rules, "
            f"{len(records & names)} of {len(records)} recording rules loaded")  # fmt: skip
    render = (f"`runbook rules render` (it writes them into {rules_dir}); load them in "
              "prometheus.yml, then reload Prometheus:\n")  # fmt: skip
    paths = [rules_dir / name for name in rulefiles.sources(profile)]
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        fix = render + wiring.prometheus_snippet(paths)
        return [Check("rules", False, f"{said}; missing {shown}", fix)]
    found = [Check("rules", True, said)]
    if links:
        found.append(_links_check(loaded, alerts, links, rules_dir))
    return [*found, _version_check(loaded, profile, rules_dir)]


def _links_check(loaded: list[dict], alerts: set[str], links: str, rules_dir: Path) -> Check:
    """Every alert's runbook_url leads to this receiver's incident pages."""
    want = links.rstrip("/") + "/incidents/"
    urls = {r["name"]: (r.get("annotations") or {}).get("runbook_url", "")
            for r in loaded if r.get("type") == "alerting" and r.get("name") in alerts}  # fmt: skip
    urls = {name: url for name, url in urls.items() if url}  # the receiver's own alerts: none
    wrong = sorted(n for n, url in urls.items() if not url.startswith(want))
    if not wrong:
        return Check("rule links", True, f"every runbook_url leads to {links.rstrip('/')}")
    seen = urls[wrong[0]].split("/incidents/")[0]
    fix = (f"`runbook rules render` writes them for {links.rstrip('/')} (external_url in "
           f"runbook.toml) into {rules_dir}; then reload Prometheus")  # fmt: skip
    return Check("rule links", False, f"{len(wrong)} of {len(urls)} alerts link to {seen}, "
                 f"not to this receiver ({links.rstrip('/')})", fix)  # fmt: skip


def _version_check(loaded: list[dict], profile: str, rules_dir: Path) -> Check:
    """Each file's runbook_rules_info series names the package version that rendered it."""
    found = {(r.get("labels") or {}).get("file"): (r.get("labels") or {}).get("version", "")
             for r in loaded if r.get("name") == rulefiles.INFO_RULE}  # fmt: skip
    stale = []
    for name, template in rulefiles.sources(profile).items():
        have, want = found.get(name), rulefiles.version(template)
        if have is None:
            stale.append(f"{name} was not rendered by `runbook rules render`")
        elif have != want:
            stale.append(f"{name} was rendered by {have}, this package is {want}")
    if not stale:
        return Check(
            "rule version", True, f"rendered by this package ({rulefiles.package_version()})"
        )
    fix = (f"`runbook rules render` (into {rules_dir}), load those files in prometheus.yml, "
           "then reload Prometheus")  # fmt: skip
    return Check("rule version", False, "; ".join(stale), fix)


@dataclass(frozen=True)
class Scrape:
    check: Check
    waiting: bool  # nothing scraped yet: the series are not missing, they are not there yet


def scrape_check(
    answer: dict[str, Any], job: str, started: datetime | None = None, has_series: bool = False
) -> Scrape:
    """Whether Prometheus has scraped the GGEN MCP target (job `job`) at least once, from its
    /api/v1/targets; `started` is when Prometheus started (a target appears within seconds),
    `has_series` whether the service's series are there anyway (federated, remote-written)."""
    targets = [t for t in answer.get("data", {}).get("activeTargets", [])
               if t.get("labels", {}).get("job") == job]  # fmt: skip
    if not targets and has_series:
        return Scrape(Check("first scrape", True, f"no {job} target here, but its series are"),
                      False)  # fmt: skip
    if not targets:
        if started and (datetime.now(UTC) - started).total_seconds() < 60:
            return _waiting("no target discovered yet (Prometheus just started)", "a few seconds")
        fix = f"add a scrape job named {job} for the GGEN MCP server's /metrics to prometheus.yml"
        return Scrape(Check("first scrape", False, f"Prometheus has no target of job {job}", fix),
                      False)  # fmt: skip
    up = [t for t in targets if t.get("health") == "up"]
    if up:
        return Scrape(Check("first scrape", True, f"{len(up)} of {len(targets)} {job} targets up"),
                      False)  # fmt: skip
    if all(t.get("lastScrape", NEVER).startswith("0001-") for t in targets):
        interval = targets[0].get("scrapeInterval") or "one scrape interval"
        return _waiting(f"no scrape yet of {targets[0].get('scrapeUrl', job)}", interval)
    down = targets[0]
    fix = (f"start GGEN MCP at {down.get('scrapeUrl')}, or correct the target's address in "
           "prometheus.yml")  # fmt: skip
    detail = f"{down.get('scrapeUrl')} is down: {down.get('lastError') or 'no answer'}"
    return Scrape(Check("first scrape", False, detail, fix), False)


def _waiting(what: str, interval: str) -> Scrape:
    fix = f"wait ~{interval} (one scrape interval) and run `runbook doctor` again"
    return Scrape(Check("first scrape", False, what, fix), True)


def started_at(answer: dict[str, Any] | None) -> datetime | None:
    """Prometheus' start time from /api/v1/status/runtimeinfo."""
    text = ((answer or {}).get("data") or {}).get("startTime", "")
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None


# -- Alertmanager -------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    what: str
    fix: str  # only what this problem needs: never the whole snippet for one wrong line


def alertmanager_problems(
    config_text: str, receiver_url: str, token: str = "", token_file: str = "TOKEN_FILE"
) -> list[Problem]:
    """What in Alertmanager's configuration (its /api/v2/status `config.original`) keeps the
    alerts from reaching `receiver_url` with the token; empty when nothing does. When its
    credentials_file can be read here (Alertmanager on this machine), it must hold `token`."""
    try:
        cfg = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as exc:
        return [Problem(f"its configuration is not YAML: {exc}",
                        "correct alertmanager.yml (`amtool check-config` names the line)")]  # fmt: skip
    hooks = [(r.get("name", ""), h) for r in cfg.get("receivers") or []
             for h in r.get("webhook_configs") or []]  # fmt: skip
    ours = [(n, h) for n, h in hooks if h.get("url") == receiver_url]
    ours = ours or [(n, h) for n, h in hooks if h.get("url") == "<secret>"]  # hidden: unknown
    if not ours:
        urls = ", ".join(str(h.get("url")) for _, h in hooks) or "none"
        fix = ("add this route and receiver to alertmanager.yml, then reload it:\n"
               + wiring.alertmanager_snippet(receiver_url, token_file))  # fmt: skip
        return [Problem(f"no webhook receiver sends to {receiver_url} (its webhooks: {urls})", fix)]
    name, hook = ours[0]
    problems = []
    if hook.get("send_resolved", True) is not True:
        problems.append(Problem(
            f"receiver {name}: send_resolved is not true (incidents never resolve)",
            f"set `send_resolved: true` in receiver {name}'s webhook, then reload Alertmanager"))  # fmt: skip
    auth = (hook.get("http_config") or {}).get("authorization") or {}
    if not auth.get("credentials_file"):
        problems.append(Problem(
            f"receiver {name}: no authorization credentials_file (the token)",
            f"add to receiver {name}'s webhook, then reload Alertmanager:\n"
            + wiring.auth_snippet(token_file)))  # fmt: skip
    elif token and _readable(auth["credentials_file"]) not in (None, token):
        problems.append(Problem(
            f"receiver {name}: its credentials_file {auth['credentials_file']} holds another "
            "token than this receiver's (alerts would get 401)",
            f"copy {token_file} over {auth['credentials_file']} (Alertmanager reads it at "
            "each send: no reload needed)"))  # fmt: skip
    if not _routes_to(cfg.get("route") or {}, name):
        problems.append(Problem(
            f"no route sends alerts to receiver {name}",
            "add this route first under `routes:` of the root route, then reload Alertmanager:\n"
            + wiring.route_snippet(name)))  # fmt: skip
    return problems


def _readable(path: str) -> str | None:
    """The token in a file, when this machine can read it; None when it cannot tell."""
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _routes_to(route: dict[str, Any], name: str) -> bool:
    return route.get("receiver") == name or any(
        _routes_to(r, name) for r in route.get("routes") or []
    )


# -- what the CLI is given: the places to check -------------------------------------------
@dataclass(frozen=True)
class Wiring:
    alertmanager_url: str  # empty: not configured, its checks are skipped
    receiver: str  # the receiver's base URL, as Alertmanager reaches it
    token: str
    token_problem: str  # why there is no token (empty when there is one)
    token_file: str
    links: str = ""  # this receiver as people reach it: where the rules' runbook_url lead

    @classmethod
    def from_settings(cls, settings: Settings, alertmanager_url: str = "",
                      receiver_url: str = "") -> Wiring:  # fmt: skip
        """Flags first, then settings (RUNBOOK_* variables, runbook.toml)."""
        default = wiring.receiver_url(settings.external_url, settings.host, settings.port)
        base = (receiver_url or default).rstrip("/").removesuffix("/alerts")
        try:
            token, problem = settings.token(), ""
        except ConfigError as exc:
            token, problem = "", str(exc)
        if not token and not problem:
            problem = "no webhook token is configured"
        return cls(alertmanager_url or settings.alertmanager_url, base, token, problem,
                   settings.webhook_token_file, default.removesuffix("/alerts"))  # fmt: skip

    @property
    def alerts_url(self) -> str:
        return f"{self.receiver}/alerts"


def listen_check(settings: Settings) -> Check:
    """`serve` listens where the external URL says, when that URL is plain http on this
    machine (behind a proxy, the proxy's port is the proxy's)."""
    url = urllib.parse.urlsplit(settings.external_url)
    where = f"{settings.host}:{settings.port}"
    if url.scheme != "http" or not url.hostname or wiring.this_machine(url.hostname) is False:
        return Check("listen address", True, f"serve listens on {where}")
    if (url.port or 80) == settings.port:
        return Check("listen address", True, f"serve listens on {where}, as external_url says")
    fix = (f"set port = {url.port or 80} in {config_path()}, or external_url to the address of the "
           f"proxy that forwards to port {settings.port}")  # fmt: skip
    return Check("listen address", False, f"external_url {settings.external_url} is port "
                 f"{url.port or 80} of this machine, but serve listens on {where}", fix)  # fmt: skip


def token_check(w: Wiring) -> Check:
    if w.token:
        where = f"from {w.token_file}" if w.token_file else "from RUNBOOK_WEBHOOK_TOKEN"
        return Check("webhook token", True, f"configured ({where})")
    fix = (f"set RUNBOOK_WEBHOOK_TOKEN_FILE (or webhook_token_file in {config_path()}) to a "
           "readable file holding the token; `runbook init` writes one")  # fmt: skip
    return Check("webhook token", False, w.token_problem, fix)


def alertmanager_checks(w: Wiring) -> list[Check]:
    """Alertmanager answers, and routes the alerts to this receiver with the token."""
    if not w.alertmanager_url:
        why = ("not configured (--alertmanager-url, RUNBOOK_ALERTMANAGER_URL, "
               "alertmanager_url in runbook.toml)")  # fmt: skip
        return [skip("alertmanager", why)]
    base = w.alertmanager_url.rstrip("/")
    status, error = get_json(f"{base}/api/v2/status")
    if status is None:
        fix = ("give its address with --alertmanager-url, RUNBOOK_ALERTMANAGER_URL or "
               "alertmanager_url in runbook.toml")  # fmt: skip
        return [Check("alertmanager", False, f"{base} does not answer: {error}", fix)]
    problems = alertmanager_problems((status.get("config") or {}).get("original", ""),
                                     w.alerts_url, w.token, w.token_file or "TOKEN_FILE")  # fmt: skip
    found = [Check("alertmanager", True, f"{base} answers")]
    if not problems:
        return found + [Check("alert route", True, f"GgenMcp alerts go to {w.alerts_url}")]
    what = "; ".join(p.what for p in problems)
    return found + [Check("alert route", False, what, "\n".join(p.fix for p in problems))]


def receiver_checks(w: Wiring) -> list[Check]:
    """The receiver answers its health route, and takes the token (an empty body then gets
    422, a wrong token 401): what Alertmanager's POSTs will meet."""
    fix = ("start it with `runbook serve`, or give the address Alertmanager calls with "
           "--receiver-url (--external-url / RUNBOOK_EXTERNAL_URL of runbook serve)")  # fmt: skip
    health, error = get_json(f"{w.receiver}/health")
    if health is None:
        return [Check("receiver", False, f"{w.receiver}/health: {error}", fix)]
    found = [Check("receiver", True, f"{w.receiver} answers")]
    if not w.token:
        return found + [skip("receiver token", "no token to try")]
    try:
        code = httpx.post(w.alerts_url, json={}, timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {w.token}"}).status_code  # fmt: skip
    except httpx.HTTPError as exc:
        return found + [Check("receiver token", False, f"POST {w.alerts_url}: {exc}", fix)]
    return found + [token_answer(code, w)]


def token_answer(code: int, w: Wiring) -> Check:
    """What the receiver's answer to an empty, authorized POST says about the token."""
    if code == 422:
        return Check("receiver token", True, "accepted (an empty alert list is refused: 422)")
    if code in (401, 403):
        mine = w.token_file or "RUNBOOK_WEBHOOK_TOKEN"
        fix = (f"the receiver holds another token than {mine}: restart `runbook serve` with "
               "--token-file naming the file Alertmanager's credentials_file names")  # fmt: skip
        return Check("receiver token", False, f"refused ({code})", fix)
    return Check("receiver token", False, f"POST {w.alerts_url} answered {code}, not 422",
                 f"is {w.receiver} this service? give its address with --receiver-url")  # fmt: skip


def get_json(url: str) -> tuple[dict[str, Any] | None, str]:
    """(the JSON answer, "") or (None, why there is none)."""
    try:
        resp = httpx.get(url, timeout=TIMEOUT)
        resp.raise_for_status()
        return resp.json(), ""
    except (httpx.HTTPError, ValueError) as exc:
        return None, str(exc) or type(exc).__name__
