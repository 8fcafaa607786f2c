"""A record leads with the answer; tables carry no row numbers; time ticks differ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from runbook_lib.execution import engine  # noqa: E402
from runbook_lib.notebook.charts import time_axis  # noqa: E402
from runbook_lib.notebook.display import numbered_only, table_html, table_text  # noqa: E402
from runbook_lib.records.lead import lead_html  # noqa: E402
from tests.conftest import summary_of

SUMMARY = {
    "alert": "GgenMcpHighErrorRate",
    "runbook": "high_error_rate",
    "status": "completed",
    "severity": "critical",
    "starts_at": "2026-01-15T10:00:00Z",
    "ends_at": None,
    "diagnosis": [
        {
            "cause": "invalid_input",
            "verdict": "likely",
            "score": 0.9,
            "evidence": ["✔ 62% of errors are validation errors", "✘ <script>x</script>"],
            "missing": [],
        },
        {"cause": "third_party_api", "verdict": "possible", "score": 0.4, "evidence": []},
    ],
    "top_cause": "invalid_input",
    "first_command": "docker logs 'ggen mcp' 2>&1 | grep -A5 'validation error'",
    "links": {"prometheus": "http://p:9090/graph?g0.expr=up&x='1'", "alertmanager": "http://a/"},
    "incident_id": 12,
}


def _text(html: str) -> str:
    """What a reader sees of an HTML fragment: the text without tags, entities decoded."""
    import html as entities
    import re

    return entities.unescape(re.sub(r"<[^>]+>", "", html))


def _list(html: str, css_class: str) -> list[str]:
    """The items of the <ul class=css_class> of a fragment, as text."""
    import re

    found = re.search(rf"<ul class='{css_class}'[^>]*>(.*?)</ul>", html, re.S)
    return [_text(x).strip() for x in re.findall(r"<li[^>]*>(.*?)</li>", found[1])] if found else []


def test_lead_says_alert_cause_evidence_first_step_and_links() -> None:
    html = lead_html(summary_of(SUMMARY))
    text = _text(html)
    assert "🚨 GgenMcpHighErrorRate · critical · firing since 2026-01-15 10:00 UTC" in text
    assert "runbook high_error_rate" in text
    assert "Top cause: Invalid input — likely (score 0.90)" in text  # a name, not an id
    assert "What to do first: docker logs 'ggen mcp' 2>&1 | grep -A5 'validation error'" in text
    assert "<script>" not in html  # evidence is text, escaped
    assert "href='http://p:9090/graph?g0.expr=up&amp;x=&#x27;1&#x27;'>Prometheus</a>" in html
    assert "<a href='http://a/'>Alertmanager</a>" in html
    assert "<a href='/incidents/12'>Incident page</a>" in html
    assert "<a href='summary.json'>summary.json</a>" in html  # the file, not its JSON
    # the order a person reads it in
    order = ["🚨", "Top cause", "What to do first", "Evidence for", "Against", "Prometheus"]
    assert [text.index(x) for x in order] == sorted(text.index(x) for x in order)


def test_evidence_against_the_cause_is_apart_from_what_supports_it() -> None:
    """A ✘ line listed with the ✔ lines read like support."""
    html = lead_html(summary_of(SUMMARY))
    assert _list(html, "evidence-for") == ["✔ 62% of errors are validation errors"]
    assert _list(html, "evidence-against") == ["✘ <script>x</script>"]
    against = html[html.index("evidence-against") :]
    assert "#b91c1c" in html[html.index("<b>Against") - 80 : html.index("<b>Against")]
    assert "✔" not in _text(against)


TWO_CAUSES = {
    **SUMMARY,
    "diagnosis": [
        {"cause": "database_connection", "verdict": "likely", "score": 0.8,
         "evidence": ["✔ I/O errors are 61% of errors", "✘ the database reports healthy"],
         "explained_share": 0.61},
        {"cause": "third_party_api", "verdict": "likely", "score": 0.75,
         "evidence": ["✔ timeouts of the tools that call out"], "explained_share": 0.34},
        {"cause": "invalid_input", "verdict": "ruled_out", "score": 0.1, "evidence": [],
         "explained_share": 0.05},
    ],
    "top_cause": "database_connection",
    "top_causes": [
        {"cause": "database_connection", "explained_share": 0.61, "score": 0.8},
        {"cause": "third_party_api", "explained_share": 0.34, "score": 0.75},
    ],
    "first_command": "pg_isready -h db",
}  # fmt: skip


def test_a_two_cause_lead_names_the_top_cause_and_the_contributing_one() -> None:
    """The heading is the cause that explains most (61%), its evidence under it; the
    second cause is named as contributing with its share, never as the answer."""
    html = lead_html(summary_of(TWO_CAUSES))
    text = _text(html)
    heading = _text(html[html.index("<h2") : html.index("</h2>")])
    assert heading == (
        "Top cause: Database connection — likely (score 0.80, explains 61% of the symptom)"
    )
    assert "Contributing as well: Third party API (34%). Both need fixing." in text
    assert _list(html, "evidence-for") == ["✔ I/O errors are 61% of errors"]
    assert _list(html, "evidence-against") == ["✘ the database reports healthy"]
    assert "What to do first: pg_isready -h db" in text
    assert text.index("Top cause") < text.index("Contributing") < text.index("What to do")


def test_lead_without_a_likely_cause_says_so_and_names_the_possible() -> None:
    s = {**SUMMARY, "top_cause": None, "first_command": None, "ends_at": "2026-01-15T11:00:00Z"}
    text = _text(lead_html(summary_of(s)))
    assert "No cause is likely" in text and "Possible: Third party API." in text
    assert "resolved at 2026-01-15 11:00 UTC (started 2026-01-15 10:00)" in text
    assert "What to do: check the overview and the logs" in text
    assert "What to do first" not in text and "Top cause" not in text


def test_a_degraded_lead_says_to_make_prometheus_reachable_first() -> None:
    s = {**SUMMARY, "top_cause": None, "first_command": None,
         "degraded_by": ["Prometheus at http://p:1 did not answer: connection refused"]}  # fmt: skip
    text = _text(lead_html(summary_of(s)))
    assert "Degraded run: Prometheus at http://p:1 did not answer" in text
    assert "What to do: make Prometheus reachable (above) and investigate again" in text


def test_a_replay_says_so_first_and_links_the_record_beside_it() -> None:
    html = lead_html(
        summary_of({**SUMMARY, "replay_of": "20260115T100200Z-GgenMcpHighErrorRate-abc"})
    )
    assert _text(html).startswith("↻ Replay of 20260115T100200Z-GgenMcpHighErrorRate-abc:")
    assert "href='../20260115T100200Z-GgenMcpHighErrorRate-abc/report.html'" in html
    elsewhere = lead_html(summary_of({**SUMMARY, "replay_of": "/srv/old/20260115T100200Z-x"}))
    assert "Replay of /srv/old/20260115T100200Z-x" in _text(elsewhere)
    assert "href='../" not in elsewhere  # not beside this record: no link that leads nowhere
    assert "Replay" not in _text(lead_html(summary_of(SUMMARY)))


def _executed(tmp: Path) -> nbformat.NotebookNode:
    summary_out = new_output(
        "display_data",
        data={"application/json": SUMMARY, "text/plain": "{}"},
        metadata={"runbook_summary": True},
    )
    return new_notebook(
        cells=[
            new_markdown_cell("# Runbook: High error rate"),
            new_code_cell("summary = run.summary()", outputs=[summary_out]),
        ]
    )


def test_a_completed_record_opens_with_the_answer(tmp_path: Path) -> None:
    req = engine.RunSpec(
        params={"alert_name": "GgenMcpHighErrorRate"},
        runbook="high_error_rate",
        output_dir=tmp_path,
    )
    nb = _executed(tmp_path)
    engine.finish(tmp_path, nb, req, req.params, "completed", None)
    saved = nbformat.read(tmp_path / "record.ipynb", as_version=4)
    assert "runbook-answer" in saved.cells[0].source and "Runbook: High" in saved.cells[1].source
    full = (tmp_path / "record.html").read_text()
    assert full.index("Top cause: Invalid input") < full.index("Runbook: High error rate")
    report = (tmp_path / "report.html").read_text()
    assert "Top cause: Invalid input" in report
    # the report is no notebook: no title introducing the summary cell, no raw summary
    assert "Runbook: High error rate" not in report and '"top_cause"' not in report


def test_a_failed_record_gets_the_failure_banner_not_an_answer(tmp_path: Path) -> None:
    req = engine.RunSpec(
        params={"alert_name": "GgenMcpHighErrorRate"},
        runbook="high_error_rate",
        output_dir=tmp_path,
    )
    nb = _executed(tmp_path)
    engine.finish(tmp_path, nb, req, req.params, "failed", "KeyError: 'x'")
    text = (tmp_path / "report.html").read_text()
    assert "Run failed" in text and "runbook-answer" not in text


def test_row_numbers_are_dropped_and_labels_kept() -> None:
    plain = pd.DataFrame({"check": ["a", "b"], "status": ["✔ holds", "✘ not yet"]})
    assert numbered_only(plain)
    assert table_text(plain).splitlines()[0].split() == ["check", "status"]
    assert "<th>0</th>" not in table_html(plain) and "<td>a</td>" in table_html(plain)
    filtered = plain[plain["check"] == "b"]  # index [1], still only a row number
    assert numbered_only(filtered) and table_text(filtered).split() == [
        "check",
        "status",
        "b",
        "✘",
        "not",
        "yet",
    ]
    labelled = plain.set_index("check")
    assert not numbered_only(labelled) and "<th>a</th>" in table_html(labelled)
    keyed = pd.DataFrame({"value": [1]}, index=["restart_count"])
    assert not numbered_only(keyed) and "restart_count" in table_text(keyed)


def _labels(window: timedelta) -> list[str]:
    end = datetime(2026, 1, 15, 17, 22, 40, tzinfo=UTC)
    times = pd.date_range(end - window, end, periods=60)
    fig, ax = plt.subplots()
    ax.plot(times, range(60))
    time_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    return labels


@pytest.mark.parametrize(
    "window",
    [
        timedelta(minutes=2),
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(hours=24),
        timedelta(days=3),
    ],
)
def test_time_ticks_differ_on_any_window(window: timedelta) -> None:
    labels = _labels(window)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels


def test_labels_are_as_short_as_they_can_be() -> None:
    assert _labels(timedelta(minutes=5))[:2] == ["17:18", "17:19"]
    assert _labels(timedelta(minutes=2))[:3] == ["17:21:00", "17:21:30", "17:22:00"]
    assert _labels(timedelta(hours=24))[:2] == ["14 Jan 18:00", "15 Jan 00:00"]
    assert _labels(timedelta(days=3))[:2] == ["13 Jan", "14 Jan"]


def test_defaults_read_the_local_stacks_log(tmp_path: Path, monkeypatch) -> None:
    """Opened beside the local stack, a notebook reads the simulator's log by default."""
    import json

    from runbook_lib.notebook.run import local_stack_log

    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path))
    log = tmp_path / "sim" / "ggen-mcp.log"
    assert local_stack_log("127.0.0.1:9464") == ""  # no stack.json: no stack here
    info = {"ports": {"ggen_mcp": 9464}, "sim_log": str(log)}
    (tmp_path / "stack.json").write_text(json.dumps(info))
    assert local_stack_log("127.0.0.1:9464") == ""  # the log is not written yet
    log.parent.mkdir()
    log.write_text("{}\n")
    assert local_stack_log("127.0.0.1:9464") == str(log)
    assert local_stack_log("10.0.0.5:9464") == ""  # another instance: not this log
    (tmp_path / "stack.json").write_text("{not json")
    assert local_stack_log("127.0.0.1:9464") == ""
