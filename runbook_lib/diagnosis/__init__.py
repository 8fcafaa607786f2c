"""From evidence to an answer: the rule engine, one rule module per runbook's causes, the
resolution commands and mitigations per cause, and the post-resolution checks.

Importing the package registers every cause's rule (`causes`), without pandas or numpy:
the receiver, the workers and the command line import it (for the answer's wording, the
post-checks' verdict) and would pay ~0.5 s of CPU each time one starts; a rule imports them
where it runs, on data that already needed them."""

from runbook_lib.diagnosis import causes as causes  # registers the rules
from runbook_lib.diagnosis.engine import RULES, diagnose, summary, top_causes, unknown_gaps
from runbook_lib.diagnosis.model import Evidence, Verdict

__all__ = [
    "RULES",
    "Evidence",
    "Verdict",
    "causes",
    "diagnose",
    "summary",
    "top_causes",
    "unknown_gaps",
]
