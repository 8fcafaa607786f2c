"""Executable notebook runbooks for GGEN MCP incidents."""

from runbook_lib.contract.startup import lean

__version__ = "0.1.0"

lean()  # before anything imports jsonschema
