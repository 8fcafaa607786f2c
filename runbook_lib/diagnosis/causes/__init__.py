"""The runbook's "Common Causes", one rule each, keyed by the routing table's cause ids.
One module per runbook; importing this package registers every rule with the engine."""

from runbook_lib.diagnosis.causes import (  # noqa: F401  (each registers its rules)
    cache,
    disk,
    errors,
    latency,
    leaks,
    memory,
    service_down,
)
