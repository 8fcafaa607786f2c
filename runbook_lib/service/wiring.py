"""How an existing Prometheus and Alertmanager are connected to this service: the
Alertmanager receiver and route (printed by `runbook init`, shown in the README) and the
lines that load the rule files rendered for this installation (`rulefiles`)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from textwrap import indent

ALERT_MATCHER = 'alertname=~"GgenMcp.*"'

# The pieces of the snippet, so that doctor can print only the one a wiring lacks.
ROUTE = """\
- receiver: {name}
  matchers: ['{matcher}']
  group_by: [alertname, instance]
  continue: true           # the routes after this one (yours) still see the alert
"""
AUTH = """\
http_config:
  authorization:
    type: Bearer
    credentials_file: {token_file}
"""
ALERTMANAGER_SNIPPET = """\
route:
  receiver: default            # your root receiver, for alerts no route matches
  routes:
{route}\
receivers:
  - name: default
  - name: runbook
    webhook_configs:
      - url: {receiver_url}
        send_resolved: true    # resolutions close incidents and start the verification
        max_alerts: 0
{auth}\
"""


def route_snippet(name: str = "runbook") -> str:
    """The route that sends GGEN MCP alerts to the receiver `name`."""
    return ROUTE.format(name=name, matcher=ALERT_MATCHER)


def auth_snippet(token_file: str | Path) -> str:
    """The webhook's bearer token, read from a file on Alertmanager's machine."""
    return AUTH.format(token_file=token_file)


def alertmanager_snippet(receiver_url: str, token_file: str | Path) -> str:
    """The alertmanager.yml route and receiver that send GGEN MCP alerts here."""
    return ALERTMANAGER_SNIPPET.format(
        route=indent(route_snippet(), " " * 4),
        receiver_url=receiver_url,
        auth=indent(auth_snippet(token_file), " " * 8),
    )


def this_machine(hostname: str) -> bool | None:
    """True for a loopback name, False for another machine; None for an address of this
    machine reachable from others."""
    try:
        if ipaddress.ip_address(hostname).is_loopback:
            return True
    except ValueError:
        if hostname == "localhost":
            return True
    mine = {socket.gethostname(), socket.getfqdn()}
    try:
        import psutil

        mine |= {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    except Exception:  # noqa: BLE001 - without the list, only the names count
        pass
    return None if hostname in mine else False


def receiver_url(external_url: str, host: str, port: int) -> str:
    """The webhook URL Alertmanager must call: the external URL when set, else host:port."""
    base = external_url.rstrip("/") if external_url else f"http://{host}:{port}"
    return f"{base}/alerts"


def prometheus_snippet(paths: list[Path]) -> str:
    """The prometheus.yml lines that load the rendered rule files (`rulefiles.write`)."""
    return "rule_files:\n" + "".join(f"  - {p}\n" for p in paths)
