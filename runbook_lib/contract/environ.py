"""Environment variables the library's processes hand each other (names only: importing
this module imports nothing else, so the worker, the zygote and a kernel can all read it)."""

from __future__ import annotations

# Set for a kernel forked by the zygote: the directory where it leaves the texts its charts
# drew (`notebook/rendering.py` `hand_over`), taken in by the zygote before its next fork.
TEXT_SPOOL = "RUNBOOK_TEXT_SPOOL"
