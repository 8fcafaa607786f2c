"""Here, not under tests/, so that it applies to `pytest --nbval runbook_lib/notebooks` too:
nbval on the runbooks themselves replays the fixtures of tests/runbooks/ (see its plugin)."""

pytest_plugins = ["tests.runbooks.plugin"]
