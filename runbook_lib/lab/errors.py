"""The lab's one error: a component of the local stack did not start or answer."""


class StackError(RuntimeError):
    """A component did not start; the message names it and quotes its log."""
