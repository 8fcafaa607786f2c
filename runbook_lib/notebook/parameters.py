"""The notebooks' parameters, declared once: in each notebook's cell tagged `parameters`, as
`name: type = default  # what it changes`, and read with papermill's own inspection.

From a notebook's declarations come a pydantic model, which checks the values a run is given
(`runbook run --param`, `runbook serve --param`, the receiver's job parameters) before any
kernel starts, and the table of docs/notebook-parameters.md (`make docs`). What the library
and the service rely on, which parameters every runbook declares and with which type, is
CONTRACT; `runbook lint` holds each notebook to it."""

from __future__ import annotations

import ast
import inspect
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from runbook_lib.contract.request import RelatedAlert, RunIncident

# The kernel every notebook declares, and the engine runs it on: the venv's own Python
# (JupyterLab started from the venv opens the notebooks with it).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class Params(BaseModel):
    """What `notebook.start`, the engine and the receiver read or set, as a run reads it
    (`run.p.container`): every runbook declares these names with these types (`runbook
    lint`). A name a notebook does not declare reads as its empty value here; the
    defaults a run falls back to stand where it reads them."""

    model_config = ConfigDict(extra="forbid")

    alert_name: str = ""
    severity: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""
    fingerprint: str = ""
    prometheus_url: str = ""
    alertmanager_url: str = ""
    at: str = ""
    lookback_minutes: int = 0
    live: bool = False
    log_file: str = ""
    container: str = ""
    log_unit: str = ""
    allow_mitigation: bool = False
    host_snapshot: str = ""
    node_instance: str = ""
    memory_limit_bytes: int = 0
    temp_dir: str = ""
    watch_dirs: list[str] = Field(default_factory=list)
    snapshot_dir: str = ""
    replay_from: str = ""
    related_alerts: list[RelatedAlert] = Field(default_factory=list)
    incident: RunIncident = Field(default_factory=RunIncident)  # RunRequest.incident_parameter


# The contract as the notebooks write it: name -> declared type (`runbook lint` compares);
# papermill injects the typed parts as JSON, so the cell declares them as JSON.
AS_JSON = {"related_alerts": "list[dict]", "incident": "dict"}
CONTRACT: dict[str, str] = {**inspect.get_annotations(Params), **AS_JSON}
POSTMORTEM_CONTRACT: dict[str, str] = {
    "records": "list[str]",
    "output_dir": "str",
    "incident": "str",
}
TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict,
                         "list": list, "Any": Any}  # fmt: skip


class ParameterError(ValueError):
    """A parameter a notebook does not declare, or a value that is not of its type."""


@dataclass(frozen=True)
class Declared:
    """One parameter as the notebook declares it (papermill's inspection)."""

    name: str
    type: str  # as written; "None" when the declaration has no type
    default: str  # the source text of the default
    help: str  # the comment after the declaration


def type_of(text: str) -> Any:
    """A declared type ('int', 'dict[str, str]', 'list[dict]') as a Python type; ValueError
    for one outside the plain types a parameter may have."""

    def build(node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and node.id in TYPES:
            return TYPES[node.id]
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            base = {"dict": dict, "list": list}.get(node.value.id)
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if base is not None:
                return (
                    base[tuple(build(a) for a in args)] if len(args) > 1 else base[build(args[0])]
                )
        raise ValueError(f"type {text!r}: a parameter is one of {', '.join(TYPES)} "
                         "(or dict[...] / list[...] of them)")  # fmt: skip

    try:
        return build(ast.parse(text, mode="eval").body)
    except SyntaxError:
        raise ValueError(f"type {text!r} is not a type") from None


def declared(path: Path) -> dict[str, Declared]:
    """The parameters `path` declares, in order, as papermill reads them. (papermill is
    imported here, not by the module: a kernel's `notebook.start` reads its parameters from
    its namespace, and papermill with nbformat and jsonschema cost a fresh kernel ~0.3 s of
    CPU.)"""
    import papermill

    found = papermill.inspect_notebook(str(path))
    return {name: Declared(p["name"], p["inferred_type_name"], p["default"], p["help"])
            for name, p in found.items()}  # fmt: skip


def declared_in_cell(source: str) -> dict[str, Declared]:
    """The same, for a parameters cell's source (what `runbook lint` reads in memory)."""
    from papermill.translators import PythonTranslator

    found = PythonTranslator.inspect({"source": source})
    return {p.name: Declared(p.name, p.inferred_type_name, p.default, p.help) for p in found}


@lru_cache(maxsize=64)
def _model(path: Path, _mtime_ns: int) -> type[BaseModel]:
    fields = {}
    for p in declared(path).values():
        try:
            fields[p.name] = (type_of(p.type) if p.type != "None" else Any, None)
        except ValueError as exc:
            raise ParameterError(f"{path}: parameter {p.name}: {exc}") from None
    return create_model(f"{path.stem}_parameters", __config__=ConfigDict(extra="forbid"), **fields)


def model(path: Path) -> type[BaseModel]:
    """A pydantic model of the parameters notebook `path` declares (read again when the
    file changes)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"no runbook notebook at {path}")
    return _model(path, path.stat().st_mtime_ns)


def validate(path: Path, params: dict[str, Any], *, undeclared: bool = False) -> dict[str, Any]:
    """`params` checked against the declarations of notebook `path`: the same values, typed;
    ParameterError naming the parameter, its type and the fix. A name the notebook does not
    declare is an error, unless `undeclared` (the engine: papermill sets it, nothing reads it)."""
    m = model(path)
    checked_names = params if not undeclared else {k: v for k, v in params.items()
                                                   if k in m.model_fields}  # fmt: skip
    try:
        checked = m.model_validate(checked_names)
    except ValidationError as exc:
        raise ParameterError(_explain(path, m, params, exc)) from None
    return {k: getattr(checked, k) if k in checked_names else v for k, v in params.items()}


def _explain(path: Path, m: type[BaseModel], params: dict, exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    if err["type"] == "extra_forbidden":
        known = ", ".join(m.model_fields)
        return (f"no parameter {name} in {path.name}: its parameters are {known} "
                "(docs/notebook-parameters.md)")  # fmt: skip
    kind = declared(path)[name].type
    return (f"parameter {name}={json.dumps(params.get(name), default=str)} is not "
            f"{kind} ({err['msg']}), as {path.name} declares it")  # fmt: skip


def from_text(text: str, kind: str) -> Any:
    """A `--param K=V` value for a parameter of type `kind`: a `str` parameter takes the text
    as written (JSON quotes, when given, are removed), any other type the JSON value."""
    if kind == "str":
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # the model says what is wrong with it


def parse_pairs(pairs: dict[str, str], path: Path) -> dict[str, Any]:
    """`--param` texts typed by the declarations of notebook `path`, then validated."""
    decl = declared(Path(path)) if Path(path).is_file() else {}
    values = {k: from_text(v, decl[k].type if k in decl else "") for k, v in pairs.items()}
    return validate(path, values)


# -- docs/notebook-parameters.md ----------------------------------------------------------
BEGIN = "<!-- parameters: written by `make docs` from the notebooks; edit the notebooks -->"
END = "<!-- end of parameters -->"


def table(notebook_dir: Path, names: list[str]) -> str:
    """The Markdown table of the parameters notebooks `names` declare: where they all declare
    a parameter alike it is one row; a default that differs is shown per notebook."""
    per = {n: declared(notebook_dir / f"{n}.ipynb") for n in names}
    order = list(dict.fromkeys(k for decl in per.values() for k in decl))
    rows = ["| parameter | type | default | what it changes |", "|---|---|---|---|"]
    for key in order:
        have = {n: d[key] for n, d in per.items() if key in d}
        first = next(iter(have.values()))
        defaults = {d.default for d in have.values()}
        default = (f"`{_cell(first.default)}`" if len(defaults) == 1 else
                   "; ".join(f"{n}: `{_cell(d.default)}`" for n, d in have.items()))  # fmt: skip
        where = "" if len(have) == len(names) else f" (only {', '.join(have)})"
        rows.append(f"| `{key}` | `{first.type}` | {default} | {_cell(first.help)}{where} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def doc_block(notebook_dir: Path, runbooks: list[str]) -> str:
    """What stands between BEGIN and END in docs/notebook-parameters.md."""
    return "\n\n".join(
        [
            BEGIN,
            "### The runbook notebooks",
            table(notebook_dir, runbooks),
            "### The post-mortem notebook",
            table(notebook_dir, ["postmortem"]),
            END,
        ]
    )


def write_doc(doc: Path, notebook_dir: Path, runbooks: list[str]) -> bool:
    """Put the tables into `doc` between its markers; whether it changed."""
    text = doc.read_text()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"{doc} lacks the markers {BEGIN!r} ... {END!r}")
    new = head + doc_block(notebook_dir, runbooks) + tail
    doc.write_text(new)
    return new != text


if __name__ == "__main__":  # make docs
    from runbook_lib.contract.alerts import RUNBOOKS
    from runbook_lib.contract.settings import NOTEBOOKS

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/notebook-parameters.md")
    print(f"{target}: {'updated' if write_doc(target, NOTEBOOKS, list(RUNBOOKS)) else 'unchanged'}")
