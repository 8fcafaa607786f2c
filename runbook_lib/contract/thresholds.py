"""Every threshold the runbooks judge against, in one table.

The alert rules in `deploy/rules/alerts.yml` fire on these values; the panels draw them, the
causes and the post-resolution checks judge with them, and evidence quotes them ("rule:
> 90 % for 5 m", as the alert rule compares). `tests/test_thresholds.py` reads the rules and fails when a value here and
the rule that carries it disagree. Values are in the unit people read (percent, seconds);
`rule_scale` converts to the unit of a rule's expression (the descriptor rule is a ratio).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """One bound: its value, and the alert rule that fires on it (with its `for:`)."""

    value: float
    alert: str | None = None
    for_: str = ""


@dataclass(frozen=True)
class Threshold:
    name: str
    unit: str
    warn: Level | None = None
    crit: Level | None = None
    below_is_bad: bool = False  # the cache hit rate: low is bad
    rule_scale: float = 1.0  # rule value = value / rule_scale

    @property
    def warn_value(self) -> float | None:
        return None if self.warn is None else self.warn.value

    @property
    def crit_value(self) -> float | None:
        return None if self.crit is None else self.crit.value

    def breached(self, value: float, level: str = "warn") -> bool:
        bound = self.warn_value if level == "warn" else self.crit_value
        if bound is None:
            return False
        return value < bound if self.below_is_bad else value > bound

    def rule_text(self, level: str = "crit") -> str:
        """How evidence names the rule it applied: "rule: ≥ 90 % for 5 m"."""
        bound = (self.crit or self.warn) if level == "crit" else (self.warn or self.crit)
        if bound is None:
            return ""
        op = "<" if self.below_is_bad else ">"
        unit = f" {self.unit}" if self.unit else ""
        window = f" for {_spaced(bound.for_)}" if bound.for_ else ""
        return f"rule: {op} {bound.value:g}{unit}{window}"


def _spaced(duration: str) -> str:
    """'5m' -> '5 m', as people write it."""
    return f"{duration[:-1]} {duration[-1]}" if duration[:-1].isdigit() else duration


T = Threshold
THRESHOLDS: dict[str, Threshold] = {
    t.name: t
    for t in [
        T(
            "error_rate",
            "%",
            warn=Level(1, "GgenMcpElevatedErrorRate", "5m"),
            crit=Level(5, "GgenMcpHighErrorRate", "5m"),
        ),
        T(
            "latency_p95",
            "s",
            warn=Level(5, "GgenMcpElevatedLatency", "5m"),
            crit=Level(10, "GgenMcpHighLatency", "5m"),
        ),
        T("cpu", "cores", warn=Level(0.8, "GgenMcpHighCPUUsage", "5m")),
        T("recalc_p95", "s", warn=Level(5, "GgenMcpHighRecalcDuration", "10m")),
        T("screenshot_p95", "s", warn=Level(10, "GgenMcpHighScreenshotDuration", "10m")),
        T("slow_queries", "queries in 5 m", warn=Level(0, "GgenMcpSlowQueryDetected", "1m")),
        T("restarts", "restarts in 5 m", warn=Level(0, "GgenMcpDeploymentCompleted", "1m")),
        T(
            "memory",
            "%",
            warn=Level(70, "GgenMcpElevatedMemoryUsage", "10m"),
            crit=Level(90, "GgenMcpMemoryCritical", "5m"),
        ),
        T("heap_growth", "bytes/h", warn=Level(100 << 20, "GgenMcpIncreasingHeapUsage", "15m")),
        T(
            "cache_hit_rate",
            "%",
            warn=Level(60),  # the runbook's "above 60 %" after a fix; no alert fires on it
            crit=Level(50, "GgenMcpLowCacheHitRate", "10m"),
            below_is_bad=True,
        ),
        T(
            "cache_evictions",
            "evictions/s",
            warn=Level(5, "GgenMcpCacheEvictionRateIncreased", "10m"),
        ),
        T(
            "libreoffice_processes",
            "processes",
            warn=Level(10, "GgenMcpHighLibreOfficeProcessCount", "5m"),
        ),
        T("active_forks", "processes", warn=Level(10, "GgenMcpHighActiveForks", "5m")),
        T(
            "descriptors",
            "%",
            crit=Level(80, "GgenMcpFileDescriptorExhaustion", "2m"),
            rule_scale=100,
        ),
        T("disk", "%", warn=Level(80, "GgenMcpHighDiskUsage", "5m")),
        # service-level objectives, over an hour
        T(
            "availability_slo",
            "%",
            crit=Level(99.9, "GgenMcpAvailabilitySLOViolation", "5m"),
            below_is_bad=True,
            rule_scale=100,
        ),
        T(
            "latency_slo",
            "% under 5 s",
            crit=Level(95, "GgenMcpLatencySLOViolation", "5m"),
            below_is_bad=True,
            rule_scale=100,
        ),
        T("error_slo", "%", crit=Level(0.1, "GgenMcpErrorRateSLOViolation", "5m"), rule_scale=100),
    ]
}
