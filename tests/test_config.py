"""runbook.toml, the environment over it, the data place outside the checkout, `runbook init`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from runbook_lib.cli import main
from runbook_lib.contract import config, settings
from runbook_lib.contract.config import ConfigError, Settings


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "etc" / "runbook.toml"
    path.parent.mkdir()
    monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
    for var in ("RUNBOOK_OUTPUT_DIR", "RUNBOOK_PROMETHEUS_URL", "RUNBOOK_PORT"):
        monkeypatch.delenv(var, raising=False)
    return path


def test_the_file_is_read_and_the_environment_wins(cfg: Path, monkeypatch) -> None:
    cfg.write_text(
        'prometheus_url = "http://prom.internal:9090"\nport = 9000\noutput_dir = "../data"\n'
        'webhook_token_file = "token"\ncorrelation_window = 120\n'
    )
    s = Settings()
    assert s.prometheus_url == "http://prom.internal:9090" and s.port == 9000
    assert s.output_dir == cfg.parent.parent / "data"  # relative to the file, not the cwd
    assert s.webhook_token_file == str(cfg.parent / "token")
    assert s.correlation_window == 120.0 and s.host == "127.0.0.1"
    monkeypatch.setenv("RUNBOOK_PORT", "9100")
    monkeypatch.setenv("RUNBOOK_PROMETHEUS_URL", "http://other:9090")
    assert (Settings().port, Settings().prometheus_url) == (9100, "http://other:9090")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('prometheus_uri = "x"\n', "prometheus_uri: unknown key; did you mean prometheus_url?"),
        ("port = 'eighty'\n", "port: Input should be a valid integer"),
        ("port = \n", "runbook.toml: "),
    ],
)
def test_a_bad_file_is_named_with_what_is_wrong(cfg: Path, text: str, says: str) -> None:
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=str(cfg)) as err:
        Settings()
    assert says in str(err.value)


def test_records_default_outside_the_checkout_and_the_cwd(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNBOOK_OUTPUT_DIR", raising=False)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setattr(settings, "is_root", lambda: True)
    assert Settings().output_dir == Path("/var/lib/runbook")
    assert config.config_path() == tmp_path / "none.toml"
    monkeypatch.setattr(settings, "is_root", lambda: False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert Settings().output_dir == tmp_path / "share" / "runbook"
    monkeypatch.delenv("RUNBOOK_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    assert config.config_path() == tmp_path / "conf" / "runbook" / "runbook.toml"


def test_the_metrics_profile_can_live_in_the_file(cfg: Path, monkeypatch) -> None:
    from runbook_lib.contract.names import load

    monkeypatch.delenv("RUNBOOK_METRICS_PROFILE", raising=False)
    contract = load().requests
    cfg.write_text('metrics_profile = "server"\n')
    assert load().requests != contract and load().requests.startswith("mcp_")


def test_init_writes_the_config_and_a_private_token_and_prints_the_wiring(
    cfg: Path, tmp_path: Path, capsys
) -> None:
    argv = ["init", "--output", str(tmp_path / "data"), "--host", "0.0.0.0",
            "--external-url", "https://runbook.example.org", "--prometheus-url", "http://p:9090"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    token = cfg.parent / "webhook-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text().strip()) > 30
    s = Settings()
    assert (s.prometheus_url, s.host, s.output_dir) == (
        "http://p:9090",
        "0.0.0.0",
        tmp_path / "data",
    )
    assert s.token() == token.read_text().strip()
    assert "      - url: https://runbook.example.org/alerts" in out
    assert f"credentials_file: {token}" in out
    rules = cfg.parent / "rules"
    assert f"  - {rules / 'alerts.yml'}\n" in out and f"  - {rules / 'recording.yml'}\n" in out
    assert f"  - {rules / 'receiver.yml'}\n" in out
    assert "runbook_url" in (rules / "alerts.yml").read_text()
    # behind the https proxy, serve keeps its own port, and init says what forwards there
    assert (s.port, s.external_url) == (8080, "https://runbook.example.org")
    assert "runbook.example.org must forward to 0.0.0.0:8080" in out
    first = token.read_text()

    assert main(argv) == 2  # never over an existing file by accident
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert token.read_text() == first  # Alertmanager may hold it already: kept


def test_init_with_a_relative_config_path_leaves_a_token_serve_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The token's place is written relative to the file, so the pair can be moved (the
    container mounts it at /etc/runbook) and a relative --config works."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--config", "etc/runbook.toml", "--output", "data"]) == 0
    assert 'webhook_token_file = "webhook-token"' in (tmp_path / "etc" / "runbook.toml").read_text()
    assert "alertmanager_url" not in (tmp_path / "etc" / "runbook.toml").read_text()  # not guessed
    capsys.readouterr()
    moved = tmp_path / "mounted"
    (tmp_path / "etc").rename(moved)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(moved / "runbook.toml"))
    assert Settings().token() == (moved / "webhook-token").read_text().strip()
    assert Settings().alertmanager_url == ""


def test_a_variable_that_is_no_number_is_named(cfg: Path, monkeypatch) -> None:
    monkeypatch.setenv("RUNBOOK_CORRELATION_WINDOW", "5m")
    with pytest.raises(ConfigError, match=r"RUNBOOK_CORRELATION_WINDOW='5m' is not a number"):
        Settings()
    monkeypatch.delenv("RUNBOOK_CORRELATION_WINDOW")
    monkeypatch.setenv("RUNBOOK_PORT", "80.5")
    with pytest.raises(ConfigError, match=r"RUNBOOK_PORT='80.5' is not a whole number"):
        Settings()
