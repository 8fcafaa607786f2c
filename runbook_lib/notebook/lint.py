"""`runbook lint`: the notebook contract, checked over the notebooks themselves.

A runbook is its `.ipynb`, edited in JupyterLab; nothing writes it from a spec. What used to
be guaranteed by generating it is checked here instead: the kernel, no outputs committed, a
`parameters` cell declaring every contract parameter with its type (read as papermill reads
it), the `start` cell naming the runbook, cells that are one call on `run` with literal
arguments, the sections in the runbook's order, and every `run.panel` query valid PromQL
whose grouping is the call's `by=`. Each problem names the notebook, the cell and the fix.

The notebook is checked as git would commit it: through the clean filter the checkout
configures for it (`make setup` installs nbstripout's), so a save from JupyterLab with its
outputs and kernel metadata lints as what reaches a commit.

PromQL is parsed by `promql-parser` (Python bindings of the Rust parser GreptimeDB uses): it
runs offline and gives the syntax tree, where `promtool` needs a server or a rule file and
says nothing of a query's grouping.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
import promql_parser

from runbook_lib.notebook import parameters
from runbook_lib.notebook.committed import as_committed, stripped_together
from runbook_lib.notebook.parameters import CONTRACT, KERNELSPEC, POSTMORTEM_CONTRACT

# The runbook's sections, in its order, by the calls on `run` that make them.
SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("header", ("header",)),
    ("assess", ("assess", "charts")),
    ("steps", ("panel", "step")),
    ("causes", ("causes",)),
    ("diagnosis", ("diagnosis",)),
    ("resolution", ("resolution", "mitigate")),
    ("communication", ("message",)),
    ("post-resolution checks", ("post_checks",)),
    ("summary", ("summary",)),
]
ORDER = " -> ".join(name for name, _ in SECTIONS)
SECTION_OF = {call: i for i, (_, calls) in enumerate(SECTIONS) for call in calls}
REQUIRED = {"header", "assess", "step", "causes", "diagnosis", "resolution", "message",
            "post_checks", "summary"}  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """One way a notebook breaks the contract, and where."""

    notebook: str
    what: str
    cell: int | None = None  # index of the cell in the notebook
    source: str = ""  # its first line, to find it in JupyterLab

    def __str__(self) -> str:
        where = "" if self.cell is None else f": cell {self.cell} `{self.source}`"
        return f"{self.notebook}{where}: {self.what}"


def lint(paths: list[Path]) -> list[Problem]:
    """Every problem of every notebook of `paths` (files, or directories of notebooks)."""
    files = []
    for path in map(Path, paths):
        files += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    committed = stripped_together(files)
    return [p for f in files for p in check_file(f, committed.get(f))]


def check_file(path: Path, committed: str | None = None) -> list[Problem]:
    """The problems of one notebook, read as git would commit it (`committed`: that text,
    when the caller has it already)."""
    shown = str(path)
    try:
        nb = nbformat.reads(as_committed(path) if committed is None else committed, as_version=4)
        nbformat.validate(nb)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem(shown, f"not a readable notebook: {first}")]
    return check(nb, path.stem, shown)


def check(nb: nbformat.NotebookNode, runbook: str, shown: str) -> list[Problem]:
    """The contract's problems of notebook `nb`, the runbook `runbook` (postmortem: the
    post-mortem draft, whose parameters and cells are its own)."""
    from runbook_lib.contract.alerts import RUNBOOKS

    problems = _kernel(nb, shown) + _clean(nb, shown)
    if runbook != "postmortem" and runbook not in RUNBOOKS:
        problems.append(Problem(shown, f"no alert routes to {runbook!r}: add its alerts to "
                                "ROUTES in runbook_lib/contract/alerts.py, or name the file "
                                "after its runbook"))  # fmt: skip
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if len(tagged) != 1 or not code or tagged[0] != code[0]:
        return [*problems, Problem(shown, "the first code cell must be the only one tagged "
                                   f"`parameters` (tagged: cells {tagged or 'none'}): in "
                                   "JupyterLab, Property Inspector > Cell Tags")]  # fmt: skip
    contract = POSTMORTEM_CONTRACT if runbook == "postmortem" else CONTRACT
    problems += _parameters(nb, code[0], contract, shown)
    if runbook != "postmortem":
        problems += _runbook_cells(nb, runbook, code[1:], shown)
    return problems


def _problem(shown: str, nb: nbformat.NotebookNode, i: int, what: str) -> Problem:
    first = next((ln for ln in nb.cells[i].source.splitlines() if ln.strip()), "")
    return Problem(shown, what, i, first.strip()[:60])


def _kernel(nb: nbformat.NotebookNode, shown: str) -> list[Problem]:
    spec = dict(nb.metadata.get("kernelspec") or {})
    if spec == KERNELSPEC:
        return []
    return [Problem(shown, f"kernelspec is {json.dumps(spec)}: the runbooks run on "
                    f"{json.dumps(KERNELSPEC)}; in JupyterLab pick Kernel > Change Kernel > "
                    f"{KERNELSPEC['display_name']}")]  # fmt: skip


def _clean(nb: nbformat.NotebookNode, shown: str) -> list[Problem]:
    return [
        _problem(
            shown,
            nb,
            i,
            "has outputs or an execution count: clear them (Edit > Clear "
            "Outputs of All Cells), or run `make setup` once so that git strips them "
            "(nbstripout)",
        )  # fmt: skip
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]


def _parameters(
    nb: nbformat.NotebookNode, i: int, contract: dict[str, str], shown: str
) -> list[Problem]:
    """Each contract parameter declared with its type; every declaration papermill reads."""
    source = nb.cells[i].source
    out = []
    try:
        assigned = [n for n in ast.parse(source).body if isinstance(n, ast.Assign | ast.AnnAssign)]
    except SyntaxError as exc:
        return [_problem(shown, nb, i, f"the parameters cell is not Python: {exc.msg}, line "
                         f"{exc.lineno}")]  # fmt: skip
    names = [t.id for n in assigned for t in (n.targets if isinstance(n, ast.Assign) else
             [n.target]) if isinstance(t, ast.Name)]  # fmt: skip
    found = parameters.declared_in_cell(source)
    for name in names:
        if name not in found:
            out.append(_problem(shown, nb, i, f"papermill cannot read the declaration of "
                                f"{name}: keep it `{name}: TYPE = VALUE  # help`, with no '=' "
                                "or '#' in its value or help"))  # fmt: skip
    for name, kind in contract.items():
        p = found.get(name)
        if p is None and name not in names:
            out.append(_problem(shown, nb, i, f"declares no {name}: add `{name}: {kind} = "
                                "...  # what it changes` (docs/notebook-parameters.md)"))  # fmt: skip
        elif p is not None and not _same_type(p.type, kind):
            out.append(_problem(shown, nb, i, f"{name} is declared "
                                f"{'with no type' if p.type == 'None' else p.type}: declare "
                                f"`{name}: {kind} = ...`, the type the library and the "
                                "receiver give it"))  # fmt: skip
    for p in found.values():
        if p.name not in contract:
            try:
                parameters.type_of(p.type)
            except ValueError as exc:
                out.append(_problem(shown, nb, i, f"parameter {p.name}: {exc}"))
    return out


def _same_type(declared: str, kind: str) -> bool:
    """`dict[str,str]` is `dict[str, str]`: compared as types, not as text."""
    try:
        return parameters.type_of(declared) == parameters.type_of(kind)
    except ValueError:
        return False


def _runbook_cells(
    nb: nbformat.NotebookNode, runbook: str, code: list[int], shown: str
) -> list[Problem]:
    if not code or not _is_start(nb.cells[code[0]].source, runbook):
        at = code[0] if code else 0
        return [_problem(shown, nb, at, "the cell after the parameters must be `from "
                         "runbook_lib import notebook` and `run = notebook.start("
                         f'"{runbook}", globals())`')]  # fmt: skip
    out: list[Problem] = []
    seen: dict[str, int] = {}
    furthest = (-1, "", 0)  # (section index, call, cell)
    for i in code[1:]:
        try:
            body = ast.parse(nb.cells[i].source).body
        except SyntaxError as exc:
            out.append(_problem(shown, nb, i, f"not Python: {exc.msg}, line {exc.lineno}"))
            continue
        for stmt in body:
            call = _literal_call(stmt)
            if call is None:
                out.append(_problem(shown, nb, i, "not one call on `run` with literal arguments "
                                    '(e.g. run.step("error_types")): logic belongs in '
                                    "runbook_lib, what a reader may change in the call"))  # fmt: skip
                continue
            method, args, kwargs = call
            if method not in SECTION_OF:
                out.append(_problem(shown, nb, i, f"run.{method} is no call a runbook makes: "
                                    f"use one of {', '.join(sorted(SECTION_OF))}"))  # fmt: skip
                continue
            seen.setdefault(method, i)
            section = SECTION_OF[method]
            if section < furthest[0]:
                out.append(_problem(shown, nb, i, f"run.{method}() ({SECTIONS[section][0]}) "
                                    f"comes after run.{furthest[1]}() ({SECTIONS[furthest[0]][0]}, "
                                    f"cell {furthest[2]}): the order is {ORDER}"))  # fmt: skip
            else:
                furthest = (section, method, i)
            out += [_problem(shown, nb, i, w) for w in _arguments(runbook, method, args, kwargs)]
    for method in sorted(REQUIRED - set(seen), key=lambda m: SECTION_OF[m]):
        out.append(Problem(shown, f"no {SECTIONS[SECTION_OF[method]][0]} section: add a cell "
                           f"calling run.{method}(...) in its place ({ORDER})"))  # fmt: skip
    return out


def _is_start(source: str, runbook: str) -> bool:
    want = ast.dump(ast.parse(f'from runbook_lib import notebook\nrun = notebook.start('
                              f'"{runbook}", globals())'))  # fmt: skip
    try:
        return ast.dump(ast.parse(source)) == want
    except SyntaxError:
        return False


def _literal_call(stmt: ast.stmt) -> tuple[str, list, dict] | None:
    """(method, args, kwargs) of `run.method(literals...)` (or `x = run.method(...)`)."""
    node = stmt.value if isinstance(stmt, ast.Expr | ast.Assign) else None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "run"):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except ValueError:
        return None
    return node.func.attr, args, kwargs


def _arguments(runbook: str, method: str, args: list, kwargs: dict) -> list[str]:
    """What is wrong with the arguments of one call (names that exist, valid PromQL)."""
    from runbook_lib.diagnosis import engine
    from runbook_lib.diagnosis.mitigation import ACTIONS
    from runbook_lib.evidence.panels import PANELS
    from runbook_lib.notebook.steps import STEPS

    if method == "step" and args and args[0] not in STEPS:
        return [f"run.step({args[0]!r}): no such step; the steps are in "
                "runbook_lib/notebook/steps.py (STEPS)"]  # fmt: skip
    if method == "charts":
        return [f"run.charts: no panel {n!r} (runbook_lib/evidence/panels.py)"
                for n in args if n not in PANELS]  # fmt: skip
    if method == "mitigate" and args:
        import runbook_lib.diagnosis.causes  # noqa: F401  (registers the causes)

        offered = {engine.CAUSES[c].mitigation for c in engine.RULES.get(runbook, {})} - {None}
        if args[0] not in ACTIONS or args[0] not in offered:
            return [f"run.mitigate({args[0]!r}): not the mitigation of a cause of {runbook} "
                    f"(offered: {', '.join(sorted(offered)) or 'none'})"]  # fmt: skip
    if method == "panel":
        return panel_problems(args[0] if args else "?", kwargs.get("promql", args[1:2] or ""),
                              kwargs.get("by"))  # fmt: skip
    return []


def panel_problems(name: str, promql: str | dict | list, by: str | None) -> list[str]:
    """Each query of `run.panel(name, promql=..., by=...)` parses, and groups by `by`."""
    from runbook_lib.evidence import panels

    if isinstance(promql, list):
        promql = promql[0] if promql else ""
    queries = promql if isinstance(promql, dict) else {"": promql}
    scope = panels.Scope(instance="lint:9464", node_instance="lint:9100")
    out = []
    for legend, template in queries.items():
        label = f'run.panel("{name}"' + (f", {legend!r}" if legend else "") + ")"
        if not isinstance(template, str) or not template.strip():
            out.append(f'{label}: no query: give promql="..."')
            continue
        try:
            expr = promql_parser.parse(panels.fill(template, scope))
        except ValueError as exc:
            out.append(f"{label}: not valid PromQL ({exc}): {template}")
            continue
        grouped = result_labels(expr)
        if grouped is None:
            continue  # the selector's own labels: by= picks one of them, unknown here
        shown = f"by ({', '.join(sorted(grouped))})" if grouped else "into one series"
        if by and grouped != {by}:
            out.append(f'{label}: the query groups {shown} but by="{by}": make them agree '
                       f"(each value of by= is one line of the chart)")  # fmt: skip
        elif not by and grouped:
            out.append(f"{label}: the query groups {shown} but the call has no by=: add "
                       f'by="{sorted(grouped)[0]}", or its series are drawn as one line')  # fmt: skip
    return out


def result_labels(expr: object) -> frozenset[str] | None:
    """The labels a query's result keeps, when its aggregation says (None: a selector's,
    not known without the data)."""
    p = promql_parser
    if isinstance(expr, p.AggregateExpr):
        if str(expr.op).lower() in ("topk", "bottomk", "limitk", "limit_ratio"):
            return result_labels(expr.expr)
        mod = expr.modifier
        if mod is None:
            return frozenset()
        return frozenset(mod.labels) if mod.type == p.AggModifierType.By else None
    if isinstance(expr, p.BinaryExpr):
        lhs = result_labels(expr.lhs)
        scalar = isinstance(expr.lhs, p.NumberLiteral)
        return result_labels(expr.rhs) if scalar else lhs
    if isinstance(expr, p.ParenExpr | p.UnaryExpr | p.SubqueryExpr):
        return result_labels(expr.expr)
    if isinstance(expr, p.Call):
        vectors = [a for a in expr.args if not isinstance(a, p.NumberLiteral | p.StringLiteral)]
        if not vectors:
            return frozenset()
        inner = result_labels(vectors[0])
        if inner is not None and expr.func.name == "histogram_quantile":
            return inner - {"le"}
        if inner is not None and expr.func.name == "label_replace":
            return inner | {expr.args[1].val}
        return inner
    if isinstance(expr, p.NumberLiteral):
        return frozenset()
    return None
