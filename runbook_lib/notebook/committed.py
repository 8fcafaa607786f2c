"""A notebook's text as git would commit it: through the clean filter the checkout
configures for it (`make setup` installs nbstripout's), run as git runs it, so that
`runbook lint` reads a save from JupyterLab with its outputs as what reaches a commit."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

STRIPOUT = "runbook_lib.notebook.stripout"  # nbstripout started through runbook_lib (its module)


def as_committed(path: Path) -> str:
    """The notebook's text as git would commit it: through the clean filter the checkout
    configures for it (`git check-attr filter`), run where git runs it (the top of the work
    tree: `make setup` names the interpreter relative to it), else as it is on disk."""
    text = path.read_text()
    found = _clean_filter(path)
    if found is None:
        return text
    top, clean = found
    done = subprocess.run(clean, shell=True, input=text, capture_output=True, text=True,
                          cwd=top, timeout=60)  # fmt: skip
    return done.stdout if done.returncode == 0 and done.stdout else text


def stripped_together(files: list[Path]) -> dict[Path, str]:
    """The committed text of those of `files` whose clean filter is nbstripout, from one
    nbstripout process per work tree (`--textconv` over the files: its start costs ~2 s of
    CPU, once instead of once a notebook). A notebook its output does not account for is
    left out: `as_committed` filters it alone."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for f in files:
        found = _clean_filter(f) if f.is_file() else None
        if found and _runs_nbstripout(found[1]):
            groups.setdefault(found, []).append(f)
    texts: dict[Path, str] = {}
    for (top, clean), group in groups.items():
        if len(group) > 1:
            texts.update(_textconv(top, clean, group))
    return texts


def _clean_filter(path: Path) -> tuple[Path, str] | None:
    """The clean command git runs on `path` and the top of its work tree, or None."""
    where, name = path.resolve().parent, path.resolve().name

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                                  text=True, timeout=30)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    driver = git("check-attr", "filter", "--", name).rpartition(": ")[2]
    if driver in ("", "unspecified", "unset", "set"):
        return None
    clean = git("config", "--get", f"filter.{driver}.clean")
    top = git("rev-parse", "--show-toplevel")
    return (Path(top), clean) if clean and top else None


def _runs_nbstripout(clean: str) -> bool:
    """Whether the clean command is nbstripout (`python -m nbstripout ...`, `nbstripout ...`,
    or `python -m runbook_lib.notebook.stripout ...`, which `make setup` installs)."""
    try:
        words = shlex.split(clean)
    except ValueError:
        return False
    names = {"nbstripout", STRIPOUT}
    return bool(names & set(words)) or any(Path(w).name == "nbstripout" for w in words)


def _textconv(top: Path, clean: str, files: list[Path]) -> dict[Path, str]:
    """nbstripout's output for each of `files`, from one run: it prints each stripped
    notebook in turn (as the filter would, a JSON document and a newline). Empty when that
    run fails or its output is not one notebook per file."""
    names = " ".join(shlex.quote(str(f.resolve())) for f in files)
    try:
        done = subprocess.run(f"{clean} --textconv {names}", shell=True, capture_output=True,
                              text=True, cwd=top, timeout=60 + 5 * len(files))  # fmt: skip
    except subprocess.TimeoutExpired:
        return {}
    if done.returncode != 0:
        return {}
    try:
        texts = _documents(done.stdout)
    except ValueError:
        return {}
    return dict(zip(files, texts, strict=True)) if len(texts) == len(files) else {}


def _documents(out: str) -> list[str]:
    """The JSON documents of `out` in turn, each with the newline that ends it."""
    found, at, decoder = [], 0, json.JSONDecoder()
    while (at := len(out) - len(out[at:].lstrip())) < len(out):  # past the whitespace
        _, end = decoder.raw_decode(out, at)
        found.append(out[at:end] + "\n")
        at = end
    return found
