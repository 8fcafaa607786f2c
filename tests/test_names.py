"""names.series_in: the contract's metric names a query reads, found by one pass over the
query's names (a histogram's series read as its base name, a recording rule's name read
up to its colons)."""

from __future__ import annotations

import pytest

from runbook_lib.contract.names import series_in, use

SEL = '{job="ggen-mcp",instance="i"}'


@pytest.mark.parametrize(
    "query,reads",
    [
        (f"max(up{SEL})", ("up",)),
        (
            f"histogram_quantile(0.95, sum by (le) (rate(ggen_mcp_request_duration_seconds_bucket"
            f"{SEL}[5m])))",
            ("ggen_mcp_request_duration_seconds",),
        ),
        (
            f"sum(rate(ggen_mcp_recalc_duration_seconds_sum{SEL}[5m])) / "
            f"sum(rate(ggen_mcp_recalc_duration_seconds_count{SEL}[5m]))",
            ("ggen_mcp_recalc_duration_seconds",),
        ),
        (
            f"100 * max(process_open_fds{SEL}) / (max(process_max_fds{SEL}) > 0)",
            ("process_max_fds", "process_open_fds"),
        ),
        ("sum(rate(ggen_mcp_errors_total:rate5m[1h]))", ("ggen_mcp_errors_total",)),
        ("max(my_up) + up_time + ggen_mcp_errors_total_extra + job:up", ()),
        ("max(ggen_mcp_active_forks_bucket_sum)", ()),
    ],
)
def test_a_query_reads_the_names_it_names(query: str, reads: tuple[str, ...]) -> None:
    assert series_in(query) == reads


def test_names_with_colons_are_read_up_to_a_word_boundary(monkeypatch) -> None:
    monkeypatch.setenv(
        "RUNBOOK_METRIC_NAMES", '{"requests": "job:ggen_requests:rate5m", "up": "up:"}'
    )
    with use("contract"):
        assert series_in("sum(job:ggen_requests:rate5m)") == ("job:ggen_requests:rate5m",)
        assert series_in("sum(job:ggen_requests:rate5m_bucket)") == ("job:ggen_requests:rate5m",)
        assert series_in("sum(job:ggen_requests) + x:job:ggen_requests:rate5m") == ()
        assert series_in("max(up:x) + up:") == ("up:",)
        assert series_in("max(up:) + up::x") == ()


def test_a_name_of_other_characters_is_still_read(monkeypatch) -> None:
    monkeypatch.setenv("RUNBOOK_METRIC_NAMES", '{"errors": "site.errors"}')
    with use("contract"):
        assert series_in("rate(site.errors[5m]) + up") == ("site.errors", "up")
        assert series_in("rate(mysite.errors[5m])") == ()
