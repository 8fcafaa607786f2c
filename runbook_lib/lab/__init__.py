"""Everything needed to try and test the runbooks on one machine: the local monitoring stack
(Prometheus, Alertmanager, node exporter), the GGEN MCP simulator, incident scenarios,
locally built container images, Redis and PostgreSQL for distributed mode, and the demo."""
