"""The local stack's error, apart from the stack itself so that the command line can catch
it without importing the stack (httpx, psutil)."""


class StackError(RuntimeError):
    """The local stack or one of its parts (a component, the simulator's mode, promtool's
    backfill) failed; the message names it and, for a component, quotes its log."""
