"""The set-up owns every program the project starts: each external executable named in the
code, the tests, the benchmarks and the scripts is installed by scripts/install-system.sh
(the table in that script), or by the virtualenv, or comes with every Debian
system (a package of priority `required`). A new `shutil.which("x")` or `["x", ...]`
command that the set-up does not install fails here, not on a fresh CI machine."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install-system.sh"
RUNNERS = {"run", "Popen", "check_output", "check_call", "call", "_run"}  # take an argv first
LOOKUPS = {"which", "_bin"}  # take a program name first
# Programs the code handles being absent, each with where it says so.
OPTIONAL = {
    "journalctl": "logs.JournalSource reports 'journalctl not found' (systemd is not required)",
}


def packages() -> dict[str, list[str]]:
    """The table of scripts/install-system.sh: package -> the binaries (or files) it provides."""
    text = INSTALL.read_text()
    body = text.split("<<'EOF'", 1)[1].split("\n", 1)[1].split("\nEOF\n", 1)[0]
    table = {}
    for line in body.splitlines():
        if line.strip() and not line.startswith("#"):
            pkg, *provides = line.split()
            table[pkg] = provides
    return table


def python_programs(path: Path) -> set[str]:
    """Program names in `which("x")`, `_bin("x")`, `run(["x", ...])` and friends (unless
    `executable=` says what really runs), and in argv lists that start with a class field
    whose default names the program (`journalctl: str = "journalctl"` ... `[self.journalctl`)."""
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            first = node.args[0]
            if name in LOOKUPS and isinstance(first, ast.Constant):
                found.add(first.value)
            elif name in RUNNERS and not any(k.arg == "executable" for k in node.keywords):
                found |= {h for h in [_argv0(first)] if h}
        elif isinstance(node, ast.ClassDef):
            defaults = {
                f.target.id: f.value.value
                for f in node.body
                if isinstance(f, ast.AnnAssign)
                and isinstance(f.target, ast.Name)
                and isinstance(f.value, ast.Constant)
            }
            for inner in ast.walk(node):
                head = inner.elts[0] if isinstance(inner, ast.List) and inner.elts else None
                if isinstance(head, ast.Attribute) and head.attr in defaults:
                    found.add(defaults[head.attr])
    return found


def _argv0(node: ast.expr) -> str | None:
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        head = node.elts[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value
    return None


def shell_programs(path: Path) -> set[str]:
    return set(re.findall(r"command -v \"?([A-Za-z0-9_.+-]+)", path.read_text()))


def programs() -> dict[str, set[str]]:
    """Every program name -> the files that start it."""
    where: dict[str, set[str]] = {}
    files = [p for d in ("runbook_lib", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        for prog in python_programs(path):
            where.setdefault(prog, set()).add(str(path.relative_to(ROOT)))
    for path in (ROOT / "scripts").glob("*.sh"):
        for prog in shell_programs(path):
            where.setdefault(prog, set()).add(str(path.relative_to(ROOT)))
    return where


def debian_package(program: str) -> str | None:
    path = shutil.which(program)
    if path is None:
        return None
    real = Path(path).resolve()
    for candidate in (real, Path(str(real).replace("/usr/", "/", 1))):  # merged /usr
        out = subprocess.run(["dpkg", "-S", str(candidate)], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0]
    return None


def priority(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Priority}", package], capture_output=True, text=True
    )
    return out.stdout.strip()


def test_the_scan_finds_the_programs_we_know_are_started() -> None:
    # Written by hand from the code: if the scan stops seeing these, it sees nothing.
    found = programs()
    for program in ("prometheus", "promtool", "amtool", "chromium", "busybox", "dockerd"):
        assert program in found, program
    assert "runbook_lib/lab/stack.py" in found["prometheus-alertmanager"]
    assert "runbook_lib/evidence/logs/sources.py" in found["journalctl"]
    assert "runbook_lib/evidence/host/oom.py" in found["dmesg"]


def test_every_program_is_installed_by_the_setup() -> None:
    provided = {b for provides in packages().values() for b in provides}
    venv_bin = Path(sys.executable).parent
    unowned = []
    for program, files in sorted(programs().items()):
        if program in provided or program in OPTIONAL or (venv_bin / program).exists():
            continue
        pkg = debian_package(program)
        if pkg is None or priority(pkg) != "required":
            unowned.append(f"{program} (started in {', '.join(sorted(files))}; package {pkg})")
    assert not unowned, (
        "add these to the table of scripts/install-system.sh (or the venv):\n" + "\n".join(unowned)
    )


@pytest.mark.parametrize("package", sorted(packages()))
def test_each_package_really_provides_what_the_table_says(package: str) -> None:
    """A wrong line in the table would make install-system.sh skip a package forever."""
    if subprocess.run(["dpkg", "-s", package], capture_output=True).returncode != 0:
        pytest.fail(f"{package} is not installed: `make setup` should have installed it")
    files = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout
    listed = set(files.split())
    for item in packages()[package]:
        if item.startswith("/"):
            assert item in listed, f"{package} does not install {item}"
        else:
            bins = {f"{d}/{item}" for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin")}
            assert bins & listed, f"{package} does not install a program named {item}"


def test_the_emoji_of_the_record_has_a_font() -> None:
    """The record's 🚨 renders as a glyph, not a box: a colour emoji font is installed."""
    out = subprocess.run(["fc-list", ":charset=1f6a8"], capture_output=True, text=True)
    assert "Emoji" in out.stdout, out.stdout or out.stderr
