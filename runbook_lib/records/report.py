"""report.html as a document read during an incident: the record's outputs under the answer,
in the runbook's order, without code, without the notebook's instructions to whoever runs
it, and without the raw summary (summary.json is the file, linked from the answer).

Left out of the report: cells the runbook tags `report-hide`; outputs the library marks as
the notebook's own (the summary the record files, `runbook_summary` in their metadata);
code cells that show nothing; and a Markdown cell whose next cell shows nothing in the
report (the notebook's title and "Run all cells" introduce its parameters; "Summary"
introduces the summary output). Links of both pages are made absolute when the receiver's
external URL is known, so a page attached to a post-mortem or a ticket still leads back.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

import nbformat
from nbconvert.preprocessors import Preprocessor

HIDE_TAG = "report-hide"  # a runbook cell to keep out of the report
NOTEBOOK_ONLY = ("runbook_summary",)  # output metadata keys of outputs the report leaves out
HREF = re.compile(r"""(\bhref=)(["'])([^"']*)\2""")


class ReportCells(Preprocessor):
    """The cells of the report: what the notebook shows a reader, nothing it asks of one."""

    def preprocess(
        self, nb: nbformat.NotebookNode, resources: dict
    ) -> tuple[nbformat.NotebookNode, dict]:
        cells = [c for c in nb.cells if HIDE_TAG not in c.metadata.get("tags", [])]
        for cell in cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if _shown(o)]
        kept = []
        for i, cell in enumerate(cells):
            after = cells[i + 1] if i + 1 < len(cells) else None
            if cell.cell_type == "code" and not cell.outputs:
                continue
            if cell.cell_type == "markdown" and _blank(after):
                continue
            kept.append(cell)
        nb.cells = kept
        return nb, resources


def _shown(output: nbformat.NotebookNode) -> bool:
    meta = output.get("metadata") or {}
    return not any(meta.get(k) for k in NOTEBOOK_ONLY)


def _blank(cell: nbformat.NotebookNode | None) -> bool:
    return cell is not None and cell.cell_type == "code" and not cell.outputs


def absolute_links(page: str, base_url: str, record: str) -> str:
    """Every link of `page` that leads to this server (`/incidents/3`) or to a file of the
    record (`summary.json`, `../<record>/report.html`) made absolute under `base_url`."""
    base = base_url.rstrip("/")
    here = f"{base}/records/{quote(record)}/report.html"

    def fix(m: re.Match) -> str:
        url = m[3]
        if not url or url.startswith("#") or urlsplit(url).scheme or url.startswith("//"):
            return m[0]
        absolute = base + url if url.startswith("/") else urljoin(here, url)
        return f"{m[1]}{m[2]}{absolute}{m[2]}"

    return HREF.sub(fix, page)
