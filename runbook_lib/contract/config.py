"""Settings from RUNBOOK_* environment variables; flags override them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_BYTES = 4 << 30  # the service's limit; RUNBOOK_MEMORY_LIMIT_BYTES overrides it


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"RUNBOOK_{name}", default)


@dataclass(frozen=True)
class Settings:
    prometheus_url: str = field(default_factory=lambda: _env("PROMETHEUS_URL"))
    output_dir: Path = field(
        default_factory=lambda: Path(_env("OUTPUT_DIR", str(ROOT / "outputs")))
    )
    state_dir: Path = field(default_factory=lambda: Path(_env("STATE_DIR", str(ROOT / ".state"))))
    deploy_dir: Path = field(default_factory=lambda: Path(_env("DEPLOY_DIR", str(ROOT / "deploy"))))
    webhook_token: str = field(default_factory=lambda: _env("WEBHOOK_TOKEN"))
    webhook_token_file: str = field(default_factory=lambda: _env("WEBHOOK_TOKEN_FILE"))
    memory_limit_bytes: int = field(
        default_factory=lambda: int(_env("MEMORY_LIMIT_BYTES", str(MEMORY_LIMIT_BYTES)))
    )

    def token(self) -> str:
        """The webhook bearer token: the variable, else the first line of the token file."""
        if self.webhook_token:
            return self.webhook_token
        if self.webhook_token_file:
            return Path(self.webhook_token_file).read_text().strip()
        return ""
