"""deploy/runbook.service and deploy/Containerfile: what can be checked on this machine.

systemd does not run here (no PID 1 systemd), so the unit is checked by `systemd-analyze
verify`, with its ExecStart pointed at this venv's `runbook`; the container build needs a
base image from a registry this machine cannot reach, so the Containerfile is checked for
what it copies, the port and the health route it probes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "runbook.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


def _unit_values(key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith(key + "=")
    ]


def test_unit_verifies_with_systemd_analyze(tmp_path: Path) -> None:
    runbook = Path(sys.executable).with_name("runbook")
    unit = tmp_path / "runbook.service"
    unit.write_text(UNIT.read_text().replace("/opt/runbook/bin/runbook", str(runbook)))
    done = subprocess.run(
        [shutil.which("systemd-analyze") or "systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify complains about the missing user on this machine only through "User"; nothing else
    problems = [line for line in done.stderr.splitlines() if line.strip() and "runbook" in line]
    assert problems == [], done.stderr


def test_unit_starts_the_receiver_with_the_config_file() -> None:
    assert _unit_values("ExecStart") == ["/opt/runbook/bin/runbook serve"]
    assert _unit_values("Environment") == ["RUNBOOK_CONFIG=/etc/runbook/runbook.toml"]
    assert "/var/lib/runbook" in _unit_values("ReadWritePaths")
    assert _unit_values("KillMode") == ["control-group"]  # kernels stop with the service
    assert _unit_values("ExecReload") == ["/bin/kill -HUP $MAINPID"]  # notify.yml read again


def test_containerfile_copies_what_exists_and_probes_a_real_route(tmp_path: Path) -> None:
    text = CONTAINERFILE.read_text()
    for sources in re.findall(r"^COPY ((?:\S+ )+)\S+$", text, re.M):
        for src in sources.split():
            assert (ROOT / src).exists(), (
                f"Containerfile copies {src}, which is not in the checkout"
            )
    probe = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", text)
    assert probe and probe.group(1) == "8080" and re.search(r"^EXPOSE 8080$", text, re.M)
    from fastapi.testclient import TestClient

    from runbook_lib.contract.config import Settings
    from runbook_lib.incidents.index import Index
    from runbook_lib.service.server import create_app

    with TestClient(
        create_app(
            Settings(webhook_token="t", output_dir=tmp_path), Index(tmp_path / "index.sqlite")
        )
    ) as client:
        assert client.get(probe.group(2)).status_code == 200
    assert 'CMD ["runbook", "serve"]' in text
