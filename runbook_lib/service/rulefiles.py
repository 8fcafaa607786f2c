"""The Prometheus rule files rendered for one installation.

The package ships the rule files as templates (`runbook_lib/rules/`): every alert's
`runbook_url` points at http://127.0.0.1:8080 and the service's memory limit is 4 GiB.
Rendering puts this installation's receiver (its external URL) into every `runbook_url`
and its memory limit into the recording rule, and adds one `runbook_rules_info` series per
file whose labels say which package version rendered it and for which receiver, so that
`runbook doctor` can tell from Prometheus' own API whether the loaded rules are current.
`runbook init` and `runbook rules render` write them; the local stack renders its fast
profile through the same function (`lab/deploy.py`)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES, RULES

TEMPLATE_BASE = "http://127.0.0.1:8080"  # the receiver the shipped files' runbook_url name
MEMORY_RULE = "ggen_mcp:memory_limit_bytes"
INFO_RULE = "runbook_rules_info"  # one series per rendered file: its version and receiver
INFO_GROUP = "runbook-rules-info"


def sources(profile: str = "contract") -> dict[str, Path]:
    """Rendered file name -> its template: the alerts, the recording rules that derive the
    series they fire on (for the real server's mcp_* metrics, the ones deriving them from
    those instead), and the alerts on this receiver itself."""
    recording = (
        RULES / "server" / "recording.yml" if profile == "server" else RULES / "recording.yml"
    )
    return {
        "alerts.yml": RULES / "alerts.yml",
        "recording.yml": recording,
        "receiver.yml": RULES / "receiver.yml",
    }


@cache
def package_version() -> str:
    try:
        return metadata.version("runbook-lib")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def version(template: Path) -> str:
    """The package's version and the template's digest: an upgrade that changed a rule
    changes it, even when the version number stayed."""
    digest = hashlib.sha256(Path(template).read_bytes()).hexdigest()[:12]
    return f"{package_version()}+{digest}"


def render(
    rules: dict,
    *,
    runbook_base: str,
    memory_limit_bytes: int | None = MEMORY_LIMIT_BYTES,
    file: str = "",
    rules_version: str = "",
) -> dict:
    """One rule file (parsed YAML) for this installation: `runbook_url` links to
    `runbook_base`, the memory limit recorded, and (with `file`) the info series."""
    base = runbook_base.rstrip("/")
    for group in rules["groups"]:
        for rule in group["rules"]:
            url = rule.get("annotations", {}).get("runbook_url", "")
            if url.startswith(TEMPLATE_BASE):
                rule["annotations"]["runbook_url"] = base + url[len(TEMPLATE_BASE) :]
            if memory_limit_bytes and rule.get("record") == MEMORY_RULE:
                rule["expr"] = f"vector({int(memory_limit_bytes)})"
    if file:
        labels = {"file": file, "version": rules_version, "runbook_url": base}
        info = {"record": INFO_RULE, "expr": "vector(1)", "labels": labels}
        rules["groups"].append({"name": INFO_GROUP, "rules": [info]})
    return rules


def rendered_text(name: str, template: Path, *, runbook_base: str, memory_limit_bytes: int) -> str:
    """The file `name` as written to disk: a header saying where it came from, then YAML."""
    rules = render(
        yaml.safe_load(template.read_text()),
        runbook_base=runbook_base,
        memory_limit_bytes=memory_limit_bytes,
        file=name,
        rules_version=version(template),
    )
    header = (
        f"# Rendered by `runbook rules render` (runbook-lib {package_version()}) from\n"
        f"# {template}\n"
        f"# for the receiver at {runbook_base.rstrip('/')}, memory limit {memory_limit_bytes} bytes.\n"
        "# Do not edit: change runbook.toml, then `runbook rules render` and reload Prometheus.\n"
    )
    return header + yaml.safe_dump(rules, sort_keys=False, width=120)


@dataclass(frozen=True)
class Written:
    path: Path
    changed: bool  # False: the file already held exactly this


def write(
    dest: Path, *, runbook_base: str, memory_limit_bytes: int, profile: str = "contract"
) -> list[Written]:
    """Render every rule file into `dest` (each replaced atomically; unchanged ones kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, template in sources(profile).items():
        text = rendered_text(
            name, template, runbook_base=runbook_base, memory_limit_bytes=memory_limit_bytes
        )
        path = dest / name
        if path.exists() and path.read_text() == text:
            out.append(Written(path, False))
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # Prometheus, running as its own user, reads them
        os.replace(tmp, path)
        out.append(Written(path, True))
    return out


def rules_dir(config_file: Path) -> Path:
    """Where the rendered files live: `rules/` beside runbook.toml."""
    return Path(config_file).parent / "rules"
