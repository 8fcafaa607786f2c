"""`runbook operator add|list|remove`: a named operator's token is printed once, the file
keeps only its SHA-256, is readable by its owner only, and the receiver follows it without a
restart."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from runbook_lib.contract.config import Settings
from runbook_lib.incidents.index import Index
from runbook_lib.service.server import create_app


def runbook(*args: str, env_output: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbook_lib.cli", "operator", *args,
                           "--output", str(env_output)], capture_output=True, text=True)  # fmt: skip


def test_add_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    added = runbook("add", "alice", env_output=tmp_path)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 40 and "\n" not in token  # only the token on stdout
    path = tmp_path / "operators.json"
    assert f"operator alice added to {path}" in added.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token not in text
    [row] = json.loads(text)["operators"]
    assert row["name"] == "alice"
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()

    again = runbook("add", "alice", env_output=tmp_path)
    assert again.returncode == 2 and "operator alice exists" in again.stderr
    bad = runbook("add", "<script>", env_output=tmp_path)
    assert bad.returncode == 2 and "operator name '<script>'" in bad.stderr
    assert json.loads(path.read_text())["operators"] == [row]  # neither changed the file

    assert runbook("add", "bob", env_output=tmp_path).returncode == 0
    listed = runbook("list", env_output=tmp_path).stdout
    assert [line.split()[0] for line in listed.splitlines()] == ["alice", "bob"]
    assert runbook("remove", "alice", env_output=tmp_path).returncode == 0
    assert [
        line.split()[0] for line in runbook("list", env_output=tmp_path).stdout.splitlines()
    ] == ["bob"]
    gone = runbook("remove", "alice", env_output=tmp_path)
    assert gone.returncode == 2 and "no operator alice" in gone.stderr


def test_the_receiver_follows_the_file_and_the_session_names_the_operator(tmp_path: Path) -> None:
    c = TestClient(create_app(Settings(webhook_token="hook", output_dir=tmp_path, viewer_token="view", session_secret="s" * 32), Index(tmp_path / "index.sqlite")), follow_redirects=False)  # fmt: skip
    assert c.post("/signin", data={"token": "not-yet"}).status_code == 401
    token = runbook("add", "dana", env_output=tmp_path).stdout.strip()  # while it runs
    assert c.post("/signin", data={"token": token, "next": "/incidents"}).status_code == 303
    cookie = c.cookies.get("runbook_session")
    assert token not in cookie
    assert "signed in as\ndana (operator)" in c.get("/incidents").text
    runbook("remove", "dana", env_output=tmp_path)
    assert c.get("/incidents").status_code == 401  # the session ended with the operator
