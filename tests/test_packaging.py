"""environment.yml gives conda users the same dependencies as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from runbook_lib.contract.settings import ROOT

# conda-forge names that differ from PyPI's
CONDA_NAMES = {"docker-py": "docker", "prometheus_client": "prometheus-client"}


def _name(spec: str) -> str:
    return re.split(r"[<>=! ]", spec, maxsplit=1)[0].strip().lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    have = set()
    for dep in env:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name = _name(spec)
            have.add(CONDA_NAMES.get(name, name))
    assert wanted - have == set()
