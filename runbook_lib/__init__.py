"""Executable notebook runbooks for GGEN MCP incidents."""

import sys

__version__ = "0.1.0"

# nbformat validates notebooks with jsonschema, which imports rfc3987_syntax only to check
# the `iri` format (notebooks never use it); building that grammar costs about a second in
# every process that reads a notebook: the CLI, each worker and each kernel. Without it,
# jsonschema skips that one format check.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
