"""The documentation stays true to the repository: every relative link of README.md and
docs/*.md leads to a file of the checkout (none outside it, none to `../shared`), the
Alertmanager snippet in the README is exactly what `runbook init` prints, and
docs/notebook-parameters.md names every parameter of the committed notebooks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from runbook_lib.service import wiring

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
SNIPPET_MARK = "<!-- alertmanager-snippet -->"
EXAMPLE_RECEIVER = "http://runbook.example.internal:8080/alerts"
EXAMPLE_TOKEN_FILE = "/etc/runbook/webhook-token"

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r'\[[^\]\n]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')


def links(markdown: str) -> list[str]:
    """The targets of `[text](target)` links, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return LINK.findall(prose)


def local_target(target: str) -> str | None:
    """The file part of a relative link; None for web, mail and same-page links."""
    if re.match(r"(?i)(https?|mailto):", target) or target.startswith("#"):
        return None
    return target.split("#", 1)[0]


def dead_links(doc: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `doc` that lead to no file of the repository at `root`."""
    dead = []
    for target in links(doc.read_text(encoding="utf-8")):
        path = local_target(target)
        if path is None:
            continue
        resolved = (doc.parent / path).resolve()
        inside = resolved == root or root in resolved.parents
        if not inside or not resolved.exists():
            dead.append(target)
    return dead


def readme_snippet(text: str | None = None) -> str:
    """The fenced yaml block right after the README's snippet marker, as written."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    at = lines.index(SNIPPET_MARK)
    assert lines[at + 1] == "```yaml", f"the line after {SNIPPET_MARK} opens no yaml block"
    end = lines.index("```", at + 2)
    return "\n".join(lines[at + 2 : end]) + "\n"


def parameter_names(notebook: Path) -> list[str]:
    """The names the notebook's `parameters` cell assigns."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: {len(cells)} cells tagged parameters"
    names = []
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


NOTEBOOKS = sorted((ROOT / "runbook_lib" / "notebooks").glob("*.ipynb"))


# -- the helpers, against text written here ----------------------------------------------------
def test_links_are_found_outside_code_only() -> None:
    text = (
        "See [a](docs/a.md#part), ![img](pics/b.png) and [web](https://x.org/y).\n"
        '[anchor](#here) and [mail](mailto:a@b.c) and [t](docs/t.md "title").\n'
        "`[not](in/a/span.md)`\n```\n[not](in/a/block.md)\n```\n"
    )
    assert links(text) == ["docs/a.md#part", "pics/b.png", "https://x.org/y", "#here",
                           "mailto:a@b.c", "docs/t.md"]  # fmt: skip
    assert [local_target(t) for t in links(text)] == [
        "docs/a.md", "pics/b.png", None, None, None, "docs/t.md"
    ]  # fmt: skip


def test_a_dead_link_or_one_leaving_the_repository_is_caught(tmp_path: Path) -> None:
    repo, shared = tmp_path / "repo", tmp_path / "shared"
    (repo / "docs").mkdir(parents=True)
    shared.mkdir()
    (shared / "DESIGN.md").write_text("outside the repository\n")
    (repo / "README.md").write_text("[design](../shared/DESIGN.md) [docs](docs/ops.md#top)\n")
    (repo / "docs" / "ops.md").write_text(
        "[up](../README.md) [gone](../nope.md#a) [here](#top) [web](https://example.org/x)\n"
    )
    assert dead_links(repo / "README.md", repo) == ["../shared/DESIGN.md"]
    assert dead_links(repo / "docs" / "ops.md", repo) == ["../nope.md#a"]


def test_the_snippet_block_is_read_exactly() -> None:
    text = f"x\n{SNIPPET_MARK}\n```yaml\na: 1\n  b: 2\n```\nafter\n"
    assert readme_snippet(text) == "a: 1\n  b: 2\n"


# -- the documentation ------------------------------------------------------------------------
@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_of_the_repository(doc: Path) -> None:
    assert dead_links(doc) == []


def test_the_docs_exist_and_the_readme_leads_to_them() -> None:
    """The site's navigation lists every page (tests/test_docs_site.py); the README leads to
    its home, the connect guide and the glossary."""
    names = {p.name for p in DOCS}
    assert {"architecture.md", "notebook-parameters.md", "records.md", "operations.md",
            "index.md", "connect.md", "glossary.md"} <= names  # fmt: skip
    listed = {local_target(t) for t in links(README.read_text(encoding="utf-8"))}
    assert {"docs/index.md", "docs/connect.md", "docs/glossary.md"} <= listed


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_refers_to_the_shared_directory(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert not [t for t in links(text) if "shared/" in t and not t.startswith("http")]


def test_the_readme_alertmanager_snippet_is_what_init_prints() -> None:
    expected = wiring.alertmanager_snippet(EXAMPLE_RECEIVER, EXAMPLE_TOKEN_FILE)
    assert readme_snippet() == expected


def test_the_notebook_parameters_are_read_from_the_committed_notebooks() -> None:
    names = {n for nb in NOTEBOOKS for n in parameter_names(nb)}
    # by hand, from the notebooks' parameters cells
    for name in ("alert_name", "labels", "prometheus_url", "live", "allow_mitigation",
                 "memory_limit_bytes", "replay_from", "records", "output_dir"):  # fmt: skip
        assert name in names, name
    assert len(NOTEBOOKS) >= 12  # the runbooks, triage and the post-mortem


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_parameter_is_documented(notebook: Path) -> None:
    doc = (ROOT / "docs" / "notebook-parameters.md").read_text(encoding="utf-8")
    missing = [n for n in parameter_names(notebook) if f"`{n}`" not in doc]
    assert missing == [], f"docs/notebook-parameters.md does not name {missing}"
