"""MkDocs hook: a docs page's link into the repository outside docs/ (a module, a rule
file, the README) works on the forge but has no page on the site; there it becomes the
file's name in code, so `mkdocs build --strict` still fails on every link between pages
that leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

LINK = re.compile(r"\[([^\]\n]+)\]\(((?:\.\./)+[^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs = Path(config["docs_dir"]).resolve()
    here = (docs / page.file.src_path).parent

    def plain(m: re.Match) -> str:
        target = (here / m[2]).resolve()
        if target == docs or docs in target.parents:
            return m[0]  # a page of the site: MkDocs checks it
        text = m[1]
        return text if text.startswith("`") else f"`{text}`"

    return LINK.sub(plain, markdown)
