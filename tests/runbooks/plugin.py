"""nbval on the runbooks themselves: `pytest --nbval runbook_lib/notebooks`.

nbval compares a notebook's cells with the outputs stored in it; the runbooks are committed
without outputs and read a live Prometheus. This plugin (loaded by the repository's
`conftest.py`) changes three things for a runbook that has a fixture in `tests/runbooks/`,
and keeps nbval's execution, comparison and sanitising:

- the fixture's parameters are injected after the parameters cell, as papermill does, and the
  kernel starts in the fixture's directory, so the runbook replays the recorded incident;
- the outputs each code cell must give come from the fixture's `expected.json`, by cell id:
  a cell the runbook gained, or one it lost, fails by name;
- charts are compared as thumbnails (`fixtures.charts_differ`), not bytes, and strings
  inside JSON outputs (the summary) are sanitised too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbCell, IPyNbFile, find_metadata_tags

from tests.runbooks import fixtures
from tests.runbooks.fixtures import INJECTED, Fixture

REGEN = "python -m tests.runbooks.record --outputs-only {runbook}  (after a change of query: make golden)"


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """nbval's collector of a runbook notebook, replaced by one that replays its fixture."""
    collected = yield
    fixture = fixtures.fixture_for(file_path)
    if fixture is None:
        return collected
    return [RunbookNotebook.from_parent(parent, path=file_path, fixture=fixture)
            if isinstance(c, IPyNbFile) else c for c in collected]  # fmt: skip


class RunbookNotebook(IPyNbFile):
    def __init__(self, *args, fixture: Fixture, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fixture = fixture

    def setup(self) -> None:
        """nbval's kernel, started in the fixture's directory (its paths are relative) with
        every setting at its default."""
        option = self.config.option
        kernel_name = (
            CURRENT_ENV_KERNEL_NAME if option.nbval_current_env else option.nbval_kernel_name
        ) or self.nb.metadata.get("kernelspec", {}).get("name", "python3")
        with fixtures.settings_at_defaults():
            self.kernel = RunningKernel(kernel_name, cwd=str(self.fixture.dir),
                                        startup_timeout=option.nbval_kernel_startup_timeout)  # fmt: skip
        self.setup_sanitize_files()

    def get_sanitize_files(self) -> list:
        return [fixtures.SANITIZE, *super().get_sanitize_files()]

    def collect(self):
        self.nb = self.fixture.notebook(self.path)
        expected = self.fixture.expected()
        code = [c for c in self.nb.cells if c.cell_type == "code"]
        for num, cell in enumerate(code):
            options = defaultdict(bool, find_metadata_tags(cell.metadata))
            options.setdefault("check", cell.id != INJECTED)
            outputs = expected.pop(cell.id, None)
            cell.outputs = fixtures.as_outputs(outputs or [])
            cell.execution_count = None if outputs is None else num + 1  # None: not compared
            yield self._one_kernel(RunbookCell.from_parent(
                self, name=cell.id, cell_num=num, cell=cell, options=options,
                new=outputs is None and cell.id != INJECTED))  # fmt: skip
        for cell_id, outputs in expected.items():
            yield self._one_kernel(GoneCell.from_parent(self, name=cell_id, outputs=outputs))

    def _one_kernel(self, item: pytest.Item) -> pytest.Item:
        """The cells of a notebook share its kernel: under xdist (`--dist loadgroup`) they go
        to one worker, in order."""
        item.add_marker(pytest.mark.xdist_group(f"nbval-{self.fixture.runbook}"))
        return item


class RunbookCell(IPyNbCell):
    def __init__(self, name, parent, cell_num, cell, options, new: bool = False) -> None:
        super().__init__(name, parent, cell_num, cell, options)
        self.new = new

    def reportinfo(self):
        return self.path, 0, f"{self.parent.fixture.runbook}::{self.name}"

    def runtest(self) -> None:
        super().runtest()  # executes the cell: later cells need what it defines
        if self.new:
            self.raise_cell_error(
                f"cell {self.name} is new: {self.parent.fixture.expected_file} has no outputs "
                f"for it; if the runbook gained it on purpose: {self._regen()}"
            )

    def compare_outputs(self, test, ref, skip_compare=None) -> bool:
        """Charts by their thumbnails, then every other output as nbval compares them."""
        self.comparison_traceback = []
        skip = (*self.parent.skip_compare, "image/png")
        charts = self._charts_agree(test, ref)
        if charts and super().compare_outputs(test, ref, skip):
            return True
        if charts:  # a text diff
            self.comparison_traceback.append("(+ expected, - this run)")
        self.comparison_traceback.append(f"if the change is intended: {self._regen()}")
        return False

    def _charts_agree(self, test, ref) -> bool:
        got = [o.data["image/png"] for o in test if "image/png" in o.get("data", {})]
        want = [o.data["image/png"] for o in ref if "image/png" in o.get("data", {})]
        if len(got) != len(want):
            self.comparison_traceback.append(f"{len(got)} charts, expected {len(want)}")
            return False
        for n, (expected, png) in enumerate(zip(want, got, strict=True), 1):
            if why := fixtures.charts_differ(expected, png):
                self.comparison_traceback.append(f"chart {n} of the cell: {why}")
                return False
        return True

    def sanitize(self, s):
        return fixtures.sanitize(s, list(self.parent.sanitize_patterns.items()))

    def _regen(self) -> str:
        return REGEN.format(runbook=self.parent.fixture.runbook)


class GoneCell(pytest.Item):
    """A cell the expected outputs have and the runbook no longer has (a step removed)."""

    def __init__(self, *, outputs: list[dict], **kwargs) -> None:
        super().__init__(**kwargs)
        self.outputs = outputs

    def runtest(self) -> None:
        raise LookupError(
            f"cell {self.name} is gone from {self.path.name}; it showed:\n"
            + "".join(f"  {line[:120].rstrip()}\n" for line in self._shown())
            + "if it was removed on purpose: "
            + REGEN.format(runbook=self.parent.fixture.runbook)
        )

    def _shown(self) -> list[str]:
        """The first lines of what the cell showed: its text, as a reader saw it."""
        lines = []
        for out in self.outputs:
            data = out.get("display", {})
            text = data.get("text/markdown") or data.get("text/plain") or out.get("text") or []
            lines += [x for x in text if not x.startswith("<IPython.core.display")][:2]
        return lines[:6]

    def repr_failure(self, excinfo, style=None) -> str:
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, 0, f"{self.parent.fixture.runbook}::{self.name}"
