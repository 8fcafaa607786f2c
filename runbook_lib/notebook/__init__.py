"""What the runbook notebooks call (`notebook.start(...)` returns the `Run` every cell uses),
how results are shown (charts, the incident message), the parameters the notebooks declare and
`runbook lint`, the contract the notebooks keep.

`start` and `Run` load on first use, so the receiver can use `communication` without
importing pandas and matplotlib."""

from typing import Any

__all__ = ["Run", "start"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from runbook_lib.notebook import run

        return getattr(run, name)
    raise AttributeError(f"module 'runbook_lib.notebook' has no attribute {name!r}")
