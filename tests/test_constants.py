"""Each number the diagnosis judges by is defined once, in `diagnosis/constants.py`, with the
reason for its value: no judging module compares a figure with a bare number."""

from __future__ import annotations

import ast
from pathlib import Path

from runbook_lib.diagnosis import constants

DIAGNOSIS = Path(__file__).resolve().parents[1] / "runbook_lib" / "diagnosis"
# Modules that judge; mitigation, postcheck and resolution act or query, and hold their own
# named parameters.
JUDGING = ["engine.py", "facts.py", "attribution.py", "investigate.py", "estimate.py", "causes"]
NEUTRAL = {0, 1, -1}  # nothing, one, and the sign of a difference are not thresholds


def _numbers(node: ast.AST) -> list[float]:
    """The numeric literals `node` compares with or passes as a threshold."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare):
            for side in [sub.left, *sub.comparators]:
                if isinstance(side, ast.Constant) and isinstance(side.value, int | float):
                    found.append(side.value)
        elif isinstance(sub, ast.keyword) and sub.arg in ("at_least", "min_share"):
            if isinstance(sub.value, ast.Constant) and isinstance(sub.value.value, int | float):
                found.append(sub.value.value)
    return [n for n in found if n not in NEUTRAL and not isinstance(n, bool)]


def _judging_files() -> list[Path]:
    out = []
    for name in JUDGING:
        path = DIAGNOSIS / name
        out += sorted(path.glob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return out


def test_no_judging_module_compares_with_a_bare_number() -> None:
    bare = {
        str(p.relative_to(DIAGNOSIS)): nums
        for p in _judging_files()
        if (nums := _numbers(ast.parse(p.read_text())))
    }
    assert bare == {}


def test_the_check_finds_a_bare_threshold() -> None:
    planted = "def f(v):\n    return v >= 0.9 and g(v, at_least=3) and v < 1"
    assert _numbers(ast.parse(planted)) == [0.9, 3]


def test_every_constant_says_why_and_is_defined_once() -> None:
    assert len(constants.TABLE) >= 40
    for name, c in constants.TABLE.items():
        assert c.why and len(c.why) > 20 and c.unit, name
    text = constants.markdown()
    assert "| `contributor_share` | 0.2 | share of the symptom |" in text
    try:
        constants._c("likely_score", 0.5, "x", "y")
    except ValueError as exc:
        assert "likely_score" in str(exc)
    else:
        raise AssertionError("a constant defined twice was accepted")
