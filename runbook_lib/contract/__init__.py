"""What everything else agrees on: the metric names GGEN MCP exposes, the alert payload and
the routing of alerts to runbooks, the thresholds the runbooks judge against, settings and
the clock. Imports nothing from the rest of the library."""
