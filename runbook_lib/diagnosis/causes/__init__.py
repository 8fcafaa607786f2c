"""The runbook's "Common Causes", one rule each, keyed by the cause ids of docs/causes.md.
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
