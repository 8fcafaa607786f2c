"""The runbooks' git clean filter: nbstripout itself (its `main`, its arguments), started
without jsonschema's IRI grammar (`startup.lean`). Git starts the filter once for every
notebook it reads (`git add`, `status` and `diff` after a save): `python -m nbstripout`
took 1.6-2.2 s of CPU a notebook here, this 0.3 s, with the same output
(tests/test_lint.py).

    python -m runbook_lib.notebook.stripout [nbstripout's arguments]
"""

from __future__ import annotations

from runbook_lib.contract.startup import lean

lean()  # git runs this from the top of a work tree: runbook_lib/__init__.py may not have run

from nbstripout import main  # noqa: E402 (after lean)

if __name__ == "__main__":
    main()
