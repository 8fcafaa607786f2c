"""What a process of runbook_lib does before it imports anything else.

nbformat validates notebooks with jsonschema, whose format checkers import rfc3987_syntax
only to check the `iri` format (no notebook schema uses it); that module builds its grammar
(Lark parsers) at import, about a second of CPU in every process that reads a notebook: the
CLI, each worker and zygote, pytest and each of its workers, git's notebook filter. Marked
missing, it is never imported, and jsonschema skips that one format check.
"""

from __future__ import annotations

import sys


def lean() -> None:
    """Keep jsonschema from importing rfc3987_syntax (see the module's docstring)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
