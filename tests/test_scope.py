"""Scoped to the alert (issue 23, item 6): two instances in one Prometheus, at the same time,
each with a different fault of the same runbook family; each alert's record blames its own
instance's cause."""

from __future__ import annotations

from runbook_lib.evidence.panels import Scope
from tests.test_notebooks import scenario_run


def test_each_alert_blames_its_own_instance(scenario_set, zygote, tmp_path) -> None:
    prom, scenarios, _ = scenario_set
    a, b = (
        next(s for s in scenarios if s.name == f"high_error_rate/{cause}/s0")
        for cause in ("invalid_input", "database_connection")
    )
    assert a.alert_at == b.alert_at and a.instance != b.instance  # the same window, side by side
    for sc in (a, b):
        (tmp_path / sc.instance).mkdir()
        summ = scenario_run(prom.url, sc, tmp_path / sc.instance, zygote=zygote)
        assert summ["labels"]["instance"] == sc.instance
        assert summ["top_cause"] == sc.cause, (sc.instance, summ["top_cause"])


def test_every_selector_of_every_signal_names_the_instance() -> None:
    import re

    from runbook_lib.evidence.signals import _history_queries, _queries, _range_queries

    scope = Scope("host-a:9464", node_instance="host-a:9100")
    queries = [q for q, *_ in [*_queries(scope, "15m").values(), *_history_queries(scope).values()]]
    queries += list(_range_queries(scope).values())
    selectors = [sel for q in queries for sel in re.findall(r"\{[^{}]*\}", q)]
    assert len(selectors) >= 40
    unscoped = [s for s in selectors if 'instance="host-a:9464"' not in s
                and 'instance="host-a:9100"' not in s]  # fmt: skip
    assert unscoped == []
