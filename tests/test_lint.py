"""`runbook lint`: the notebook contract over the notebooks themselves. The committed runbooks
pass; a copy broken in each way the check knows fails with a message naming the notebook,
the cell and what to fix; a save with outputs passes only where git strips them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from runbook_lib.contract.settings import NOTEBOOKS, ROOT
from runbook_lib.notebook import committed, lint

RUNBOOK_CLI = Path(sys.executable).with_name("runbook")


def test_the_committed_notebooks_keep_the_contract() -> None:
    done = subprocess.run([str(RUNBOOK_CLI), "lint"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "12 notebooks, 0 problems: the notebook contract holds"


def _copy(tmp: Path, runbook: str = "high_error_rate") -> tuple[Path, nbformat.NotebookNode]:
    path = tmp / f"{runbook}.ipynb"
    shutil.copy(NOTEBOOKS / f"{runbook}.ipynb", path)
    return path, nbformat.read(path, as_version=4)


def _cell(nb: nbformat.NotebookNode, text: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if text in c.source)


def _problems(path: Path, nb: nbformat.NotebookNode) -> list[str]:
    nbformat.write(nb, path)
    return [str(p) for p in lint.lint([path])]


def test_a_missing_parameter_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, "lookback_minutes: int = 15")
    nb.cells[i].source = "\n".join(
        ln for ln in nb.cells[i].source.splitlines() if not ln.startswith("lookback_minutes")
    )
    [problem] = _problems(path, nb)
    assert problem.startswith(f"{path}: cell 1 `# Parameters: Papermill sets them")
    assert "declares no lookback_minutes: add `lookback_minutes: int = ...  #" in problem


def test_a_parameter_without_its_type_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, "live: bool = True")
    nb.cells[i].source = nb.cells[i].source.replace("live: bool = True", "live = True")
    [problem] = _problems(path, nb)
    assert "live is declared with no type: declare `live: bool = ...`" in problem


def test_a_declaration_papermill_cannot_read_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, "container: str")
    nb.cells[i].source = nb.cells[i].source.replace(
        "# the service's Docker container, by name or by label (label:KEY...)",
        "# e.g. container=ggen",
    )
    [problem] = _problems(path, nb)
    assert "papermill cannot read the declaration of container" in problem


def test_a_section_out_of_order_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    causes, diagnosis = _cell(nb, "run.causes()"), _cell(nb, "run.diagnosis()")
    nb.cells[causes], nb.cells[diagnosis] = nb.cells[diagnosis], nb.cells[causes]
    [problem] = _problems(path, nb)
    assert problem.startswith(f"{path}: cell {diagnosis} `run.causes()`: ")
    assert f"run.causes() (causes) comes after run.diagnosis() (diagnosis, cell {causes})" in (
        problem
    )
    assert "the order is header -> assess -> steps -> causes -> diagnosis -> resolution" in problem


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    del nb.cells[_cell(nb, "run.message()")]
    [problem] = _problems(path, nb)
    assert "no communication section: add a cell calling run.message(...)" in problem


def test_a_by_that_disagrees_with_the_grouping_is_named(tmp_path: Path) -> None:
    """The issue's sawtooth: the query changed to `sum by (tool)`, `by=` left at error_type."""
    path, nb = _copy(tmp_path)
    i = _cell(nb, 'run.step("error_types")')
    nb.cells[i].source = nb.cells[i].source.replace("sum by (error_type)", "sum by (tool)")
    [problem] = _problems(path, nb)
    assert problem.startswith(f'{path}: cell {i} `run.panel(`: run.panel("errors_by_type"): ')
    assert 'the query groups by (tool) but by="error_type": make them agree' in problem


def test_a_grouping_without_by_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, 'run.step("failing_tools")')
    nb.cells[i].source = nb.cells[i].source.replace('    by="tool",\n', "")
    [problem] = _problems(path, nb)
    assert 'the query groups by (tool) but the call has no by=: add by="tool"' in problem


def test_an_invalid_query_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, 'run.step("error_types")')
    nb.cells[i].source = nb.cells[i].source.replace("[5m]))", "[5m])")
    [problem] = _problems(path, nb)
    assert 'run.panel("errors_by_type"): not valid PromQL (' in problem
    assert "sum by (error_type) (rate(ggen_mcp_errors_total{sel}[5m]) > 0" in problem


def test_outputs_left_in_are_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, "run.header()")
    nb.cells[i].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[i].execution_count = 3
    [problem] = _problems(path, nb)
    assert problem.startswith(f"{path}: cell {i} `run.header()`: has outputs or an execution")


def test_another_kernel_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    nb.metadata.kernelspec = {"name": "runbook", "display_name": "Python (runbook)",
                              "language": "python"}  # fmt: skip
    [problem] = _problems(path, nb)
    assert problem.startswith(f'{path}: kernelspec is {{"display_name": "Python (runbook)"')
    assert "pick Kernel > Change Kernel > Python 3 (ipykernel)" in problem


def test_logic_in_a_cell_and_unknown_names_are_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    i = _cell(nb, 'run.step("recent_errors")')
    nb.cells[i].source = 'for s in ["recent_errors"]:\n    run.step(s)\nrun.step("no_such_step")'
    problems = _problems(path, nb)
    assert len(problems) == 2
    assert "not one call on `run` with literal arguments" in problems[0]
    assert "run.step('no_such_step'): no such step" in problems[1]


def test_a_mitigation_of_another_runbook_is_named(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path, "disk_usage")
    i = _cell(nb, 'run.mitigate("clean_temp_files")')
    nb.cells[i].source = 'run.mitigate("end_old_soffice")'
    [problem] = _problems(path, nb)
    assert "run.mitigate('end_old_soffice'): not the mitigation of a cause of disk_usage" in (
        problem
    )


def test_the_start_cell_names_the_notebooks_runbook(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path, "memory")
    i = _cell(nb, "notebook.start(")
    nb.cells[i].source = nb.cells[i].source.replace('"memory"', '"high_latency"')
    [problem] = _problems(path, nb)
    assert 'run = notebook.start("memory", globals())' in problem


def test_the_command_exits_1_and_lists_each_problem(tmp_path: Path) -> None:
    path, nb = _copy(tmp_path)
    nb.cells[_cell(nb, "run.header()")].execution_count = 1
    nb.cells[_cell(nb, "run.message()")].source = "run.message(); run.resolution()"
    nbformat.write(nb, path)
    done = subprocess.run([str(RUNBOOK_CLI), "lint", str(tmp_path)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "1 notebooks, 2 problems"
    assert "run.resolution() (resolution) comes after run.message() (communication" in lines[1]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout


def test_a_save_with_outputs_lints_as_git_would_commit_it(tmp_path: Path) -> None:
    """Where `make setup` installed the filter, git stores the notebook without what a run
    added, and lint reads it so; without the filter the outputs would be committed."""
    repo = tmp_path / "repo"
    (repo / "runbook_lib" / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    _git(repo, "init", "-q")
    path, nb = _copy(repo / "runbook_lib" / "notebooks")
    i = _cell(nb, "run.header()")
    nb.cells[i].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[i].execution_count = 3
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    nbformat.write(nb, path)
    assert [p.cell for p in lint.lint([path])] == [i]  # no filter yet: the outputs would go in
    subprocess.run(["bash", str(ROOT / "scripts" / "install-git-filter.sh"), sys.executable],
                   cwd=repo, check=True, capture_output=True)  # fmt: skip
    assert lint.lint([path]) == []
    _git(repo, "add", ".")
    stored = _git(repo, "show", ":runbook_lib/notebooks/high_error_rate.ipynb")
    assert stored == (NOTEBOOKS / "high_error_rate.ipynb").read_text()  # byte for byte


def test_the_installed_filter_strips_as_nbstripout_without_building_the_iri_grammar(
    tmp_path: Path,
) -> None:
    """The clean command `make setup` installs gives nbstripout's own output, lint knows it
    for nbstripout (one run for many notebooks), and its process never imports
    rfc3987_syntax's grammar (a second and more of CPU in each of git's filter runs)."""
    repo, [path] = _checkout(tmp_path, ["high_error_rate"])
    subprocess.run(["bash", str(ROOT / "scripts" / "install-git-filter.sh"), sys.executable],
                   cwd=repo, check=True, capture_output=True)  # fmt: skip
    clean = _git(repo, "config", "--get", "filter.nbstripout.clean").strip()
    assert committed._runs_nbstripout(clean)
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # each import, on stderr
    done = subprocess.run(clean, shell=True, cwd=repo, env=env, input=path.read_text(),
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout == (NOTEBOOKS / "high_error_rate.ipynb").read_text()
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "nbformat" in imported and "rfc3987_syntax.syntax_helpers" not in imported


@pytest.mark.parametrize(
    "query,by,groups",
    [
        ("sum by (tool) (rate(x[5m]))", "tool", {"tool"}),
        ("100 * max(x) / 4", None, set()),
        ("histogram_quantile(0.95, sum by (le, tool) (rate(x_bucket[5m])))", "tool", {"tool"}),
        ("sum without (tool) (x)", None, None),
        ("x{job='a'}", "component", None),
        ("topk(3, sum by (tool) (x))", "tool", {"tool"}),
    ],
)
def test_result_labels_of_common_queries(query: str, by: str | None, groups) -> None:
    import promql_parser

    got = lint.result_labels(promql_parser.parse(query))
    assert (None if got is None else set(got)) == groups
    assert lint.panel_problems("p", query, by) == []


def test_the_parameters_doc_is_written_from_the_notebooks() -> None:
    from runbook_lib.contract.alerts import RUNBOOKS
    from runbook_lib.notebook import parameters

    text = (ROOT / "docs" / "notebook-parameters.md").read_text()
    block = text[text.index(parameters.BEGIN) : text.index(parameters.END) + len(parameters.END)]
    assert block == parameters.doc_block(NOTEBOOKS, list(RUNBOOKS)), "run `make docs`"
    row = "| `lookback_minutes` | `int` | `15` | the window the diagnosis reads signals and"
    assert row in block and "| `records` | `list[str]` | `[]` |" in block


def _checkout(tmp_path: Path, runbooks: list[str]) -> tuple[Path, list[Path]]:
    """A git checkout with the project's .gitattributes and copies of `runbooks` saved
    after a run (outputs, execution counts, language_info): what git must strip."""
    repo = tmp_path / "repo"
    (repo / "runbook_lib" / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    _git(repo, "init", "-q")
    paths = []
    for runbook in runbooks:
        path, nb = _copy(repo / "runbook_lib" / "notebooks", runbook)
        i = _cell(nb, "run.header()")
        nb.cells[i].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
        nb.cells[i].execution_count = 3
        nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
        nbformat.write(nb, path)
        paths.append(path)
    return repo, paths


def test_the_filter_runs_from_the_top_of_the_work_tree_as_git_runs_it(tmp_path: Path) -> None:
    """`make setup` names the interpreter relative to the checkout's top (.venv/bin/python),
    where git runs the filter: lint runs it there too, not beside the notebook."""
    repo, [path] = _checkout(tmp_path, ["high_error_rate"])
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    subprocess.run(["bash", str(ROOT / "scripts" / "install-git-filter.sh")], cwd=repo,
                   check=True, capture_output=True)  # fmt: skip
    assert lint.lint([path]) == []


def test_one_nbstripout_strips_every_notebook_and_each_keeps_its_own_problems(
    tmp_path: Path,
) -> None:
    repo, paths = _checkout(tmp_path, ["disk_usage", "high_error_rate", "memory"])
    nb = nbformat.read(paths[2], as_version=4)
    start = nb.cells[_cell(nb, "notebook.start(")]
    start.source = start.source.replace('"memory"', '"high_latency"')
    nbformat.write(nb, paths[2])
    runs = tmp_path / "nbstripout-runs"
    stripper = tmp_path / "bin" / "nbstripout"  # nbstripout, counting its runs
    stripper.parent.mkdir()
    stripper.write_text(
        f'#!/bin/sh\necho run >> {runs}\nexec {sys.executable} -m nbstripout "$@"\n'
    )
    stripper.chmod(0o755)
    _git(repo, "config", "filter.nbstripout.clean",
         f"{stripper} --keep-id --extra-keys 'metadata.language_info cell.metadata.trusted'")  # fmt: skip
    [problem] = lint.lint([repo / "runbook_lib" / "notebooks"])
    assert problem.notebook == str(paths[2])
    assert 'run = notebook.start("memory", globals())' in str(problem)
    assert runs.read_text() == "run\n"
