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

import copy
import functools
import re
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import nbformat
from jinja2 import pass_context
from nbconvert import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.strings import clean_html
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbconvert.preprocessors import Preprocessor
from nbformat import validator

HIDE_TAG = "report-hide"  # a runbook cell to keep out of the report
NOTEBOOK_ONLY = ("runbook_summary",)  # output metadata keys of outputs the report leaves out
HREF = re.compile(r"""(\bhref=)(["'])([^"']*)\2""")
# The divs nbconvert's own pass makes focusable: a cell's input, and each output.
FOCUSABLE = re.compile(r'<div class="(jp-Cell-inputWrapper|[^"]*\bjp-OutputArea-output\b[^"]*)"')
NO_ALT = re.compile(r"<img(?![^>]*\balt=)")
GENERIC_ALT = "No description has been provided for this image"  # nbconvert's


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


class PageExporter(HTMLExporter):
    """nbconvert's HTML exporter without its BeautifulSoup pass over the finished page
    (parsing and re-serialising it, charts inlined, cost ~0.05 s of each record's CPU),
    doing what that pass does: inputs and outputs focusable (`tabindex`), every image with
    an alt text: a chart's own (from its output's metadata, by the template `runbook`;
    nbconvert's pass gave every chart the generic one), the generic one where none is set."""

    def from_notebook_node(  # type: ignore[override]
        self, nb: nbformat.NotebookNode, resources: dict | None = None, **kw: Any
    ) -> tuple[str, dict]:
        # HTMLExporter.from_notebook_node's set-up, up to its soup (nbconvert 7)
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name", None))
        highlight = self.filters.get("highlight_code") or self._highlight(lexer)
        resources = self._init_resources(resources)
        widgets = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                        resources=resources)  # fmt: skip
        self.register_filter("highlight_code", highlight)
        self.register_filter("clean_html", cached_clean_html)
        self.register_filter("filter_data_type", widgets)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return accessible(page), resources

    def _preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[Any, dict]:
        """nbconvert's `_preprocess` (nbconvert 7) without its deep copy of `nb`: its one
        caller, `from_notebook_node`, hands it a deep copy already made (each copy of a
        record's notebook, its charts' nodes included: a tenth of the pages' CPU, profiled)."""
        resources = copy.deepcopy(resources)
        _, nb = validator.normalize(nb)
        for preprocessor in self._preprocessors:
            nb, resources = preprocessor(nb, resources)
            if not self.optimistic_validation:
                self._validate_preprocessor(nb, preprocessor)
        if self.optimistic_validation and self._preprocessors:
            self._validate_preprocessor(nb, self._preprocessors[-1])
        return nb, resources

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        """nbconvert's Markdown filter, its answer kept by the source for this exporter: a
        runbook's Markdown cells are the same in every record (mistune rendered each twice a
        record, once per page). A cell with attachments is rendered every time."""
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        if cell.get("attachments"):
            return super().markdown2html(context, source)
        kept = self.__dict__.setdefault("_markdown", {})
        options = (self.embed_images, self.anchor_link_text, self.exclude_anchor_links)
        key = (source, path, options, repr(self.lexer_options))
        if key not in kept:
            if len(kept) >= CACHED_PIECES:
                kept.clear()
            kept[key] = super().markdown2html(context, source)
        return kept[key]

    def _highlight(self, lexer: str | None) -> CachedHighlight:
        """nbconvert's highlighter for `lexer`, kept with its answers for the next pages."""
        kept = self.__dict__.setdefault("_highlighters", {})
        if lexer not in kept:
            kept[lexer] = CachedHighlight(Highlight2HTML(pygments_lexer=lexer, parent=self))
        return kept[lexer]


# A runbook's code cells are the same in every record: their highlighted, sanitised HTML is
# made once per exporter (pygments and bleach were a third of a record's worker CPU under
# `benchmarks.record_profile`).
CACHED_PIECES = 512


class CachedHighlight:
    """nbconvert's `highlight_code` filter, its answers kept by what they depend on: the
    source, the language and the cell's `magics_language` (not the cell's run times)."""

    def __init__(self, highlight: Highlight2HTML) -> None:
        self.highlight = highlight
        self._render = functools.lru_cache(CACHED_PIECES)(self._uncached)

    def __call__(self, source: str, language: str | None = None, metadata: Any = None) -> str:
        return self._render(source, language, (metadata or {}).get("magics_language"))

    def _uncached(self, source: str, language: str | None, magics: str | None) -> str:
        return self.highlight(source, language, {"magics_language": magics} if magics else None)


def cached_clean_html(element: str | bytes) -> str:
    """nbconvert's `clean_html` (bleach), kept by its input."""
    return _clean_html(element.decode() if isinstance(element, bytes) else str(element))


@functools.lru_cache(CACHED_PIECES)
def _clean_html(element: str) -> str:
    return clean_html(element)


def accessible(page: str) -> str:
    """`page` with every cell input and output div focusable, and an alt text on every
    image (the generic one where the template set none)."""
    page = FOCUSABLE.sub(lambda m: f'{m[0]} tabindex="0"', page)
    return NO_ALT.sub(f'<img alt="{GENERIC_ALT}"', page)
