"""How an existing Prometheus and Alertmanager are connected to this service: the
Alertmanager receiver and route (printed by `runbook init`, shown in the README) and the
rule files Prometheus must load."""

from __future__ import annotations

from pathlib import Path

from runbook_lib.contract.config import RULES

ALERT_MATCHER = 'alertname=~"GgenMcp.*"'

ALERTMANAGER_SNIPPET = """\
route:
  receiver: default            # your root receiver, for alerts no route matches
  routes:
    - receiver: runbook
      matchers: ['{matcher}']
      group_by: [alertname, instance]
      continue: true           # the routes after this one (yours) still see the alert
receivers:
  - name: default
  - name: runbook
    webhook_configs:
      - url: {receiver_url}
        send_resolved: true    # resolutions close incidents and start the verification
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""


def alertmanager_snippet(receiver_url: str, token_file: str | Path) -> str:
    """The alertmanager.yml route and receiver that send GGEN MCP alerts here."""
    return ALERTMANAGER_SNIPPET.format(
        matcher=ALERT_MATCHER, receiver_url=receiver_url, token_file=token_file
    )


def receiver_url(external_url: str, host: str, port: int) -> str:
    """The webhook URL Alertmanager must call: the external URL when set, else host:port."""
    base = external_url.rstrip("/") if external_url else f"http://{host}:{port}"
    return f"{base}/alerts"


def rule_files(profile: str = "contract") -> list[Path]:
    """The rule files Prometheus must load: the alerts, and the recording rules that derive
    the series the alerts fire on (for the real server's mcp_* metrics, the recording rules
    that derive those series from them instead); and the alerts on this receiver itself."""
    recording = (
        RULES / "server" / "recording.yml" if profile == "server" else RULES / "recording.yml"
    )
    return [RULES / "alerts.yml", recording, RULES / "receiver.yml"]


def prometheus_snippet(profile: str = "contract") -> str:
    """The prometheus.yml lines that load the rule files."""
    return "rule_files:\n" + "".join(f"  - {p}\n" for p in rule_files(profile))
