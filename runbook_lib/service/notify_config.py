"""`notify.yml`: where messages go (Apprise URLs, or Slack with a bot token), which
incidents and events each target takes, quiet hours, and how failed deliveries are retried.
Checked when loaded: a bad file is refused with its name and the field that is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from runbook_lib.service.slack import DEFAULT_API_URL
from runbook_lib.storage.outbox import KINDS as EVENT_KINDS


class SlackTarget(BaseModel):
    """A Slack channel through the Web API with a bot token (`chat:write`), so follow-ups
    reply in the first message's thread and its status line is kept current."""

    channel: str  # "#incidents" or a channel id; the bot must be in it
    token: SecretStr | None = None  # xoxb-... (kept out of reprs and logs), or
    token_file: Path | None = None  # a file holding it (relative: to notify.yml)
    api_url: str = DEFAULT_API_URL

    @model_validator(mode="after")
    def _one_token(self) -> SlackTarget:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give the bot token as either token or token_file")
        return self

    def bearer(self) -> str:
        """The token; ValueError naming the file when it cannot be read or is empty."""
        if self.token is not None:
            return self.token.get_secret_value()
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the Slack token file {self.token_file}: {exc}") from exc
        if not token:
            raise ValueError(f"the Slack token file {self.token_file} is empty")
        return token


class Target(BaseModel):
    """One channel: an Apprise URL or a Slack bot, and which incidents and events go there
    (all when a list is absent)."""

    name: str
    url: str | None = None
    slack: SlackTarget | None = None
    severities: list[str] | None = None
    runbooks: list[str] | None = None
    events: list[str] | None = None

    @field_validator("events")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        bad = sorted(set(v or ()) - set(EVENT_KINDS))
        if bad:
            raise ValueError(f"unknown events {bad}; known: {', '.join(EVENT_KINDS)}")
        return v

    @model_validator(mode="after")
    def _one_channel(self) -> Target:
        if (self.url is None) == (self.slack is None):
            raise ValueError("give either url (Apprise) or slack (a bot token), not both")
        return self

    def takes(self, kind: str) -> bool:
        """Whether its `events:` filter lets this kind of event through."""
        return self.events is None or kind in self.events

    def wants(self, kind: str, severity: str, runbook: str) -> bool:
        """Whether a message of this kind about such an incident is for it."""
        return self.takes(kind) and all(
            allowed is None or value in allowed
            for allowed, value in ((self.severities, severity), (self.runbooks, runbook))
        )


class QuietHours(BaseModel):
    """Messages for alerts below `except_severities` wait until the quiet hours end."""

    start: clock
    end: clock
    timezone: str = "UTC"
    except_severities: list[str] = Field(default_factory=lambda: ["critical"])

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def resume_at(self, now: float, severity: str) -> float:
        """When a message held at `now` may go: `now` outside quiet hours or when exempt."""
        if severity in self.except_severities:
            return now
        local = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        t = local.time()
        quiet = self.start <= t < self.end if self.start <= self.end else (
            t >= self.start or t < self.end
        )  # fmt: skip
        if not quiet:
            return now
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.timestamp()


class Retry(BaseModel):
    base_s: float = 5.0  # first retry after this, doubling each time
    max_s: float = 600.0
    max_attempts: int = 20


class NotifyConfig(BaseModel):
    base_url: str = ""  # links in messages lead here (the receiver as people reach it)
    targets: list[Target] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None  # off unless set
    retry: Retry = Field(default_factory=Retry)
    backlog_hours: float = 1.0  # on start, events older than this before it are not sent

    @classmethod
    def load(cls, path: Path) -> NotifyConfig:
        """The file parsed and checked; ValueError naming the file and the bad field."""
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from exc
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise ValueError(f"{path}: {where}") from exc
        names = [t.name for t in cfg.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: target names must be unique, got {names}")
        for i, t in enumerate(cfg.targets):
            if t.slack and t.slack.token_file and not t.slack.token_file.is_absolute():
                t.slack.token_file = Path(path).parent / t.slack.token_file
            try:
                if t.slack:
                    t.slack.bearer()  # a token file that cannot be read stops the start
            except ValueError as exc:
                raise ValueError(f"{path}: targets.{i}.slack: {exc}") from None
        return cfg

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


class Watched:
    """notify.yml as it is now, for a receiver that runs for months: read again when the
    file changes (a new inode, mtime or size) or when asked (SIGHUP). A file that no longer
    loads keeps the last good configuration, and the log says why; a file that appears
    turns notifications on, one that goes turns them off."""

    def __init__(self, path: Path, config: NotifyConfig | None, base_url: str = "") -> None:
        self.path, self.base_url = Path(path), base_url  # links, when the file names none
        self.config = self._with_base(config or NotifyConfig())
        self._seen = self._version()
        self._asked = False

    def _with_base(self, cfg: NotifyConfig) -> NotifyConfig:
        if not cfg.base_url:
            cfg.base_url = self.base_url
        return cfg

    def _version(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def request(self) -> None:
        """Read the file again at the next poll, changed or not (SIGHUP)."""
        self._asked = True

    def poll(self) -> str | None:
        """Reload when the file changed or a reload was asked; what happened, for the log
        (None when nothing did)."""
        now = self._version()
        if now == self._seen and not self._asked:
            return None
        self._seen, self._asked = now, False
        if now is None:
            before, self.config = self.config, self._with_base(NotifyConfig())
            return f"{self.path} is gone: notifications off{_targets_change(before, self.config)}"
        try:
            fresh = self._with_base(NotifyConfig.load(self.path))
        except ValueError as exc:
            return f"{exc}; kept the configuration loaded before"
        before, self.config = self.config, fresh
        return f"{self.path} read again{_targets_change(before, fresh)}"


def _targets_change(before: NotifyConfig, after: NotifyConfig) -> str:
    """': targets a, b (added b; removed c; changed a)', or ': no change'."""
    old = {t.name: t.model_dump_json() for t in before.targets}
    new = {t.name: t.model_dump_json() for t in after.targets}
    parts = [f"{what} {', '.join(names)}" for what, names in (
        ("added", [n for n in new if n not in old]),
        ("removed", [n for n in old if n not in new]),
        ("changed", [n for n in new if n in old and new[n] != old[n]]),
    ) if names]  # fmt: skip
    rest = before.model_dump_json(exclude={"targets"}) != after.model_dump_json(exclude={"targets"})
    if rest:
        parts.append("quiet hours, retry or links changed")
    targets = ", ".join(new) or "none"
    return (
        f": targets {targets} ({'; '.join(parts)})" if parts else f": targets {targets} (no change)"
    )
