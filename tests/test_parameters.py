"""The parameters as Jupyter has them: each call on `run` reads the notebook's globals again,
so the parameters cell edited and run again applies to the next cell run, without the
`start` cell; the declared types check them; `--param` and the engine read the declarations
with papermill's inspection."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.notebook import fetching, parameters
from runbook_lib.notebook.parameters import ParameterError

DOWN = "http://127.0.0.1:1"  # nothing answers: the runs here need no Prometheus


def _opened(runbook: str = "high_error_rate") -> dict:
    """A notebook's globals after its parameters and start cells ran, as in a kernel."""
    nb = nbformat.read(NOTEBOOKS / f"{runbook}.ipynb", as_version=4)
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)  # the parameters cell
    namespace.update(prometheus_url=DOWN, alertmanager_url=DOWN)
    exec(nb.cells[2].source, namespace)  # from runbook_lib import notebook; run = ...start
    return namespace


def test_a_changed_parameter_applies_to_the_next_call() -> None:
    ns = _opened()
    run = ns["run"]
    run.panel("errors_by_tool", promql="sum by (tool) (rate(ggen_mcp_errors_total{sel}[5m]))",
              by="tool", window="30m")  # fmt: skip
    first_at, first_gaps = run.at, list(run.gaps)
    ns.update(at="2026-01-15T10:00:00Z", lookback_minutes=30,
              labels={"job": "ggen-mcp", "instance": "edited:1"})  # fmt: skip
    run.header()  # any later cell, not the start cell
    assert run.at.isoformat() == "2026-01-15T10:00:00+00:00" != first_at.isoformat()
    assert run.p.lookback_minutes == 30 and run.scope.instance == "edited:1"
    assert first_gaps and run.gaps != first_gaps  # found again, for the new values
    # the panel the cell defined stays, fetched again for the new instance and time
    data = fetching.data(run, "errors_by_tool")
    query = next(iter(data.panel.queries(run.scope).values()))
    assert (
        query
        == 'sum by (tool) (rate(ggen_mcp_errors_total{job="ggen-mcp",instance="edited:1"}[5m]))'
    )


def test_unchanged_parameters_keep_what_the_run_found() -> None:
    ns = _opened()
    run = ns["run"]
    run.figures["probe"] = 1.0
    at = run.at
    exec("lookback_minutes: int = 15", ns)  # the parameters cell run again, unchanged
    run.header()
    assert run.figures == {"probe": 1.0} and run.at == at  # "now" stays the run's now


def test_a_value_of_the_wrong_type_is_named() -> None:
    ns = _opened()
    ns["lookback_minutes"] = "thirty"
    with pytest.raises(ParameterError, match=r'lookback_minutes = "thirty" is not int .*: fix '
                       "it in the parameters cell"):  # fmt: skip
        ns["run"].header()


def test_opened_by_hand_without_alertmanager_it_explores_and_says_why() -> None:
    run = _opened()["run"]
    assert run.p.alert_name == "" and run.alert_start is None
    assert run.exploring.startswith("## Exploration · high_error_rate · 127.0.0.1:9464\n")
    assert f"Alertmanager at {DOWN} did not answer" in run.exploring
    assert any(g.startswith(f"opened by hand: Alertmanager at {DOWN} did not answer")
               for g in run.gaps)  # fmt: skip


def test_an_alert_given_is_examined_without_asking() -> None:
    ns = _opened()
    ns.update(alert_name="GgenMcpHighErrorRate", severity="critical",
              starts_at="2026-01-15T09:50:00Z", at="2026-01-15T10:00:00Z")  # fmt: skip
    run = ns["run"]
    run.header()
    assert run.exploring == "" and run.alert_start.isoformat() == "2026-01-15T09:50:00+00:00"
    assert not [g for g in run.gaps if "opened by hand" in g]


NB = NOTEBOOKS / "high_error_rate.ipynb"


def test_param_text_is_read_by_the_declared_type() -> None:
    got = parameters.parse_pairs(
        {"fingerprint": "1234", "live": "false", "lookback_minutes": "30",
         "log_file": '"quoted"', "watch_dirs": '["/a", "/b"]'}, NB)  # fmt: skip
    assert got == {"fingerprint": "1234", "live": False, "lookback_minutes": 30,
                   "log_file": "quoted", "watch_dirs": ["/a", "/b"]}  # fmt: skip


@pytest.mark.parametrize(
    "pairs,message",
    [
        ({"lookback": "3"}, "no parameter lookback in high_error_rate.ipynb: its parameters "
                            "are alert_name, severity, labels,"),
        ({"lookback_minutes": "soon"}, 'parameter lookback_minutes="soon" is not int ('),
        ({"labels": '["a"]'}, 'parameter labels=["a"] is not dict[str, str] ('),
    ],
)  # fmt: skip
def test_a_bad_param_is_named(pairs: dict, message: str) -> None:
    with pytest.raises(ParameterError) as exc:
        parameters.parse_pairs(pairs, NB)
    assert str(exc.value).startswith(message)


def test_the_engine_checks_declared_names_and_passes_others(tmp_path: Path) -> None:
    checked = parameters.validate(NB, {"lookback_minutes": 5, "extra": "x"}, undeclared=True)
    assert checked == {"lookback_minutes": 5, "extra": "x"}
    with pytest.raises(ParameterError, match="no runbook notebook at"):
        parameters.validate(tmp_path / "missing.ipynb", {})


def test_declarations_come_from_the_parameters_cell(tmp_path: Path) -> None:
    nb = nbformat.read(NB, as_version=4)
    nb.cells[1].source += "\nretries: int = 3  # how often to ask again"
    path = tmp_path / "high_error_rate.ipynb"
    nbformat.write(nb, path)
    decl = parameters.declared(path)["retries"]
    assert (decl.type, decl.default, decl.help) == ("int", "3", "how often to ask again")
    assert parameters.parse_pairs({"retries": "4"}, path) == {"retries": 4}
    with pytest.raises(ParameterError, match="no parameter retries"):
        parameters.parse_pairs({"retries": "4"}, NB)
