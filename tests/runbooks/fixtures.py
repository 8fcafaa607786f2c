"""A runbook's nbval fixture, kept beside the tests: `tests/runbooks/<runbook>/`.

- `params.json`: the parameters of one recorded incident, set to replay it (`replay_from =
  "data"`, no live host, no mitigation, Prometheus and Alertmanager at addresses that never
  resolve), as `runbook run --from-record` would;
- `data/`: what Prometheus and the logs answered the recorded run, a record's `data/` read by
  `evidence.recording.Replay` (no second replay path); `host.json` where the scenario has a
  host snapshot;
- `expected.json`: the outputs each code cell of the runbook gave, by cell id, sanitised
  (`sanitize.cfg`), texts as lists of lines and charts as thumbnails, so a regeneration after
  an intended change is a diff of what changed.

The pytest plugin (`plugin.py`) executes the runbook itself against this and compares; `make
golden` (`record.py`) writes it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbval.plugin import coalesce_streams, get_sanitize_patterns
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from PIL import Image

from runbook_lib.contract.alerts import RUNBOOKS

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "sanitize.cfg"
CONFIG = ROOT / "runbook.toml"  # empty: every setting at its default
INJECTED = "injected-parameters"  # papermill's tag for the cell it adds
THUMB = 32  # a chart is compared as a THUMB x THUMB grey thumbnail
# Thumbnails agree when no pixel moved more than PIXEL levels (of 255) and on average less than
# MEAN: a renderer's anti-aliasing passes, a series or a band drawn elsewhere does not.
PIXEL, MEAN = 40, 1.5


@dataclass(frozen=True)
class Fixture:
    runbook: str
    dir: Path

    @property
    def params_file(self) -> Path:
        return self.dir / "params.json"

    @property
    def expected_file(self) -> Path:
        return self.dir / "expected.json"

    def params(self) -> dict[str, Any]:
        return json.loads(self.params_file.read_text(encoding="utf-8"))

    def expected(self) -> dict[str, list[dict]]:
        """Cell id -> the outputs it gave (compact form); empty before the first `make golden`."""
        if not self.expected_file.exists():
            return {}
        return json.loads(self.expected_file.read_text(encoding="utf-8"))["cells"]

    def notebook(self, source: Path) -> nbformat.NotebookNode:
        """The runbook `source` with the fixture's parameters injected as papermill does."""
        nb = parameterize_notebook(load_notebook_node(str(source)), self.params())
        for cell in nb.cells:
            if INJECTED in cell.metadata.get("tags", []):
                cell.id = INJECTED  # papermill's id is random; results are named by cell id
        return nb


def fixture_for(notebook: Path, root: Path = ROOT) -> Fixture | None:
    """The fixture of a runbook notebook (by its name), if it has one."""
    name = Path(notebook).stem
    if name not in RUNBOOKS or not (root / name / "params.json").exists():
        return None
    return Fixture(name, root / name)


@contextmanager
def settings_at_defaults() -> Iterator[None]:
    """No RUNBOOK_* variable and an empty runbook.toml, for the kernels started meanwhile: the
    outputs depend on the fixture alone, not on this machine's configuration."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("RUNBOOK_")]:
        del os.environ[name]
    os.environ["RUNBOOK_CONFIG"] = str(CONFIG)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sanitizer(extra: list[Path] = ()) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of sanitize.cfg, as nbval reads them."""
    pairs = []
    for path in (SANITIZE, *extra):
        pairs += get_sanitize_patterns(Path(path).read_text(encoding="utf-8"))
    return pairs


def sanitize(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """Strings, also inside JSON outputs (a summary holds times and addresses too)."""
    if isinstance(value, dict):
        return {k: sanitize(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v, pairs) for v in value]
    if isinstance(value, str):
        for regex, replace in pairs:
            value = re.sub(regex, replace, value)
    return value


# -- outputs as stored ------------------------------------------------------------------------
def compact(outputs: list, pairs: list[tuple[str, str]]) -> list[dict]:
    """Executed outputs as expected.json keeps them: sanitised, texts as lines, charts as
    thumbnails, no metadata or execution counts."""
    kept = []
    for out in coalesce_streams([nbformat.from_dict(o) for o in outputs]):
        if out.output_type == "stream":
            kept.append({"stream": out.name, "text": _lines(sanitize(out.text, pairs))})
        elif out.output_type == "error":
            kept.append({"error": out.ename, "evalue": sanitize(out.evalue, pairs)})
        else:
            data = {}
            for mime, value in out.data.items():
                if mime == "image/png":
                    data[mime] = thumbnail(value)
                elif isinstance(value, str):
                    data[mime] = _lines(sanitize(value, pairs))
                else:
                    data[mime] = sanitize(value, pairs)
            kept.append({"display": data})
    return kept


def as_outputs(kept: list[dict]) -> list[nbformat.NotebookNode]:
    """expected.json's outputs as nbval compares them (notebook outputs)."""
    outs = []
    for out in kept:
        if "stream" in out:
            outs.append(
                {"output_type": "stream", "name": out["stream"], "text": "".join(out["text"])}
            )
        elif "error" in out:
            outs.append({"output_type": "error", "ename": out["error"], "evalue": out["evalue"],
                         "traceback": []})  # fmt: skip
        else:
            data = {m: "".join(v) if isinstance(v, list) and m != "application/json" else v
                    for m, v in out["display"].items()}  # fmt: skip
            outs.append({"output_type": "display_data", "data": data, "metadata": {}})
    return [nbformat.from_dict(o) for o in outs]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


# -- charts: compared as thumbnails, not bytes --------------------------------------------------
def thumbnail(png: str) -> str:
    """`png <width>x<height> <hex of a THUMB x THUMB grey thumbnail>`: what a chart looks like,
    in one line of expected.json."""
    with Image.open(io.BytesIO(base64.b64decode(png))) as img:
        size = f"{img.width}x{img.height}"
        grey = img.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
        return f"png {size} {grey.tobytes().hex()}"


def charts_differ(expected: str, got_png: str) -> str:
    """Why a chart does not look like the expected thumbnail; '' when it does."""
    got = thumbnail(got_png)
    (_, size_e, pix_e), (_, size_g, pix_g) = expected.split(), got.split()
    if size_e != size_g:
        return f"the chart is {size_g} pixels, expected {size_e}"
    diffs = [abs(a - b) for a, b in zip(bytes.fromhex(pix_e), bytes.fromhex(pix_g), strict=True)]
    worst, mean = max(diffs), sum(diffs) / len(diffs)
    if worst > PIXEL or mean > MEAN:
        return (f"the chart looks different: its {THUMB}x{THUMB} thumbnail moved by up to "
                f"{worst} grey levels, {mean:.2f} on average (allowed {PIXEL}, {MEAN})")  # fmt: skip
    return ""


def write_expected(fixture: Fixture, executed: nbformat.NotebookNode) -> None:
    """expected.json from an executed notebook: every code cell by id, the injected one aside."""
    pairs = sanitizer()
    cells = {
        cell.id: compact(cell.outputs, pairs)
        for cell in executed.cells
        if cell.cell_type == "code" and INJECTED not in cell.metadata.get("tags", [])
    }
    doc = {"runbook": fixture.runbook, "cells": cells}
    fixture.expected_file.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
