"""Alertmanager's version-4 webhook payload. Unknown keys are ignored: newer Alertmanagers
add fields, and an alert must not be refused for that."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; a time UTC cannot hold (year 1 at +05:00) is a bad field."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


def _rfc3339(value: object) -> object:
    """Alertmanager sends RFC 3339 text; pydantic alone would read 0 or "0" as 1970."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339_DATE.match(value):
        raise ValueError("expected an RFC 3339 time such as 2026-01-15T10:02:00Z")
    return value


RFC3339_DATE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]")
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: Timestamp  # noqa: N815 - Alertmanager's field names
    endsAt: Timestamp | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def context(self) -> bool:
        """A slow-burn alert: context of the incident it joins (see SLOW_BURN_LABEL)."""
        return is_slow_burn(self.labels)


class WebhookPayload(_Model):
    version: Literal["4"]
    groupKey: str  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[Alert] = Field(min_length=1)


# Alert -> runbook notebook (`runbook list` prints it); any other alert name -> triage.
ROUTES: dict[str, str] = {
    "GgenMcpServiceDown": "service_down",
    "GgenMcpNoSuccessfulRequests": "service_down",
    "GgenMcpHighErrorRate": "high_error_rate",
    "GgenMcpElevatedErrorRate": "high_error_rate",
    "GgenMcpErrorRateSLOViolation": "high_error_rate",
    "GgenMcpAvailabilitySLOViolation": "high_error_rate",
    "GgenMcpHighLatency": "high_latency",
    "GgenMcpElevatedLatency": "high_latency",
    "GgenMcpLatencySLOViolation": "high_latency",
    "GgenMcpMemoryCritical": "memory",
    "GgenMcpElevatedMemoryUsage": "memory",
    "GgenMcpIncreasingHeapUsage": "memory",
    "GgenMcpLowCacheHitRate": "cache_hit_rate",
    "GgenMcpCacheEvictionRateIncreased": "cache_hit_rate",
    "GgenMcpHighLibreOfficeProcessCount": "libreoffice_leak",
    "GgenMcpHighActiveForks": "fork_leak",
    "GgenMcpFileDescriptorExhaustion": "fd_leak",
    "GgenMcpHighDiskUsage": "disk_usage",
    # symptoms of slowness: the latency runbook finds the stage or resource behind them
    "GgenMcpHighCPUUsage": "high_latency",
    "GgenMcpSlowQueryDetected": "high_latency",
    "GgenMcpHighRecalcDuration": "high_latency",
    "GgenMcpHighScreenshotDuration": "high_latency",
    "GgenMcpDeploymentCompleted": "deployment",  # what changed with the restart
}
RUNBOOKS = (*dict.fromkeys(ROUTES.values()), "triage")


# Which alert of an incident leads its investigation: the most severe (unknown severities last).
SEVERITY_RANK = {"critical": 3, "error": 3, "warning": 2, "info": 1}


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity.lower(), 0)


# A rule declares its alert slow-burn (an SLO burn rate over a long window) with this label:
# such an alert attaches to the incident of its fault as context; it neither leads the
# investigation nor holds the incident open once the symptom alerts resolve.
SLOW_BURN_LABEL = "slow_burn"


def is_slow_burn(labels: dict[str, str]) -> bool:
    return labels.get(SLOW_BURN_LABEL, "").lower() in ("true", "1", "yes")


def lead_rank(slow_burn: bool, severity: str) -> tuple[int, int]:
    """How strongly an alert claims the lead of its incident's investigation: a symptom
    before a slow-burn alert, then the more severe."""
    return (0 if slow_burn else 1, severity_rank(severity))


def route(alertname: str) -> str:
    """The runbook notebook for an alert name; unknown names go to triage."""
    return ROUTES.get(alertname, "triage")
