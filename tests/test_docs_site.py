"""The documentation site builds from docs/ with `mkdocs build --strict`, as `make docs`
does: every page under docs/ becomes a page of the site and of its navigation (no list to
keep: a new page appears by itself), a link between pages that leads nowhere fails the
build, and nothing is fetched from elsewhere when the site is built or read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(site.parent)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    done = build(ROOT, out)
    assert done.returncode == 0, done.stderr
    return out


def test_every_page_under_docs_is_built_and_in_the_navigation(site: Path) -> None:
    assert len(PAGES) >= 15  # the pages of this checkout, and any added since
    home = (site / "index.html").read_text()
    for page in PAGES:
        html = page.with_suffix(".html")
        assert (site / html).exists(), html
        assert f'href="{html}"' in home or html.name == "index.html", f"{html} not in the nav"


def test_the_readme_pictures_and_pages_are_part_of_the_site(site: Path) -> None:
    assert (site / "img" / "record.png").stat().st_size > 10_000
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "docs/index.md" in text and "docs/connect.md" in text and "docs/glossary.md" in text


def test_nothing_is_fetched_from_elsewhere(site: Path) -> None:
    """Scripts, styles, fonts and pictures all come from the site itself (a hyperlink to
    elsewhere is fine: it is followed only when clicked)."""
    fetched = re.compile(r'<(?:script|img|link)\b[^>]*(?:src|href)="(https?:)?//', re.I)
    for page in site.rglob("*.html"):
        for tag in re.findall(r"<(?:script|img|link)\b[^>]*>", page.read_text()):
            if "<link" in tag and 'rel="canonical"' in tag:
                continue
            assert not fetched.search(tag), f"{page.name}: {tag}"
    for css in site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//", css.read_text()), css.name
        assert (
            "@import" not in css.read_text() or "//" not in css.read_text().split("@import")[1][:80]
        )


def test_a_dead_link_between_pages_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    (copy / "runbook_lib").mkdir()
    (copy / "deploy").mkdir()  # the source links' targets need not exist for the site
    (copy / "docs" / "extra.md").write_text("# Extra\n\nSee [the gone page](gone.md).\n")
    done = build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert "extra.md" in done.stderr and "gone.md" in done.stderr
    (copy / "docs" / "extra.md").write_text("# Extra\n\nSee [a module](../runbook_lib/x.py).\n")
    assert build(copy, tmp_path / "site2").returncode == 0  # outside docs/: plain text there
