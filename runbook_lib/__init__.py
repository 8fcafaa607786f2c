"""Executable notebook runbooks for GGEN MCP incidents."""

__version__ = "0.1.0"
