"""The operator's mistakes the CLI answers with one line instead of a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake in what the command was given: the message names the problem and its fix
    (the flag, variable or file), and `main` prints it alone and exits 2."""
