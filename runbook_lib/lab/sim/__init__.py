"""A GGEN MCP simulator: serves the metrics contract and makes every runbook alert fire.

Run it with `python -m runbook_lib.lab.sim --port 9464`; switch faults with
`POST /admin/mode {"mode": "errors"}` or `scripts/load-test.sh errors`.
"""

from runbook_lib.lab.sim.modes import MODES, Profile

__all__ = ["MODES", "Profile"]
