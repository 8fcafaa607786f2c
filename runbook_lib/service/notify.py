"""Getting the finding to the team: the investigation, the resolve and the verification,
posted to the channels `notify.yml` names, through Apprise (Slack, Mattermost, Teams,
Discord, Matrix, e-mail, ntfy, PagerDuty, JSON webhooks, ...).

Messages go through the index's outbox (`records.outbox`) and a background `Sender`: a run
or a webhook never waits for a chat service, a target that is down delays only its own
messages (retried with exponential backoff), and a restart resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from runbook_lib.diagnosis.answer import unexplained
from runbook_lib.records import outbox as ob
from runbook_lib.records import record
from runbook_lib.records.index import Index
from runbook_lib.service import incident_view

EVENT_KINDS = ob.KINDS


class Target(BaseModel):
    """One channel: an Apprise URL, and which alerts go there (all when a list is absent)."""

    name: str
    url: str
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

    def wants(self, kind: str, severity: str, runbook: str) -> bool:
        return all(
            allowed is None or value in allowed
            for allowed, value in (
                (self.events, kind),
                (self.severities, severity),
                (self.runbooks, runbook),
            )
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
        return cfg

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


# ---------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Message:
    title: str
    body: str  # Markdown
    attach: Path | None = None


def compose(ev: ob.Event, index: Index, output_dir: Path, base_url: str) -> Message:
    """What to say about `ev`, from the incident and its records: the alert, the top cause
    with its verdict and two strongest evidence lines, the first command, the link, and the
    runbook's communication message ready to paste."""
    inc = incident_view.load(index, ev.incident_id)
    link = f"{base_url.rstrip('/')}/incidents/{inc['id']}" if base_url else ""
    where = inc["labels"].get("instance", "")
    head = f"{inc['alertname']} · {inc['severity'] or 'no severity'}" + (
        f" · {where}" if where else ""
    )
    first = f"🚨 {head}"  # the first message's title, which follow-ups name
    paste = incident_view.message_of(inc)
    if ev.kind == "investigation":
        run = _run(inc, ev.run_id)
        summ = _summary(output_dir, run)
        lines = [_finding(summ, run)]
        if summ.get("first_command"):
            lines.append(f"First step: `{summ['first_command']}`")
        lines += _link(link)
        lines += ["", "Incident message, ready to paste:", "```", paste, "```"]
        attach = _overview_png(output_dir, run["record"]) if run else None
        return Message(first, "\n".join(lines), attach)
    follow = f"Follow-up to “{first}” (started {inc['starts_at'][:16].replace('T', ' ')} UTC)"
    if ev.kind == "resolved":
        body = [follow, f"Resolved after {inc['duration']}."]
        body += _link(link) + ["", "```", paste, "```"]
        return Message(f"✅ Resolved: {head}", "\n".join(body))
    run = _run(inc, ev.run_id)
    summ = _summary(output_dir, run)
    held = _held(summ)
    verdict = {True: "the fix held", False: "the fix did NOT hold", None: "no answer"}[held]
    body = [follow, f"Verification after the resolve: {verdict}."] + _link(link)
    return Message(f"{'✅' if held else '⚠️'} Verification: {head}: {verdict}", "\n".join(body))


def _run(inc: dict, run_id: int | None) -> dict | None:
    return next((r for r in inc.get("runs", []) if r["id"] == run_id), None)


def _summary(output_dir: Path, run: dict | None) -> dict:
    if not run:
        return {}
    try:
        return record.summary(output_dir / run["record"])
    except (OSError, ValueError, KeyError):
        return {"status": run.get("status") or "unknown", "top_cause": run.get("top_cause")}


def _finding(summ: dict, run: dict | None) -> str:
    if summ.get("status") not in (None, "completed", "degraded"):
        why = summ.get("error") or summ.get("status")
        return f"The investigation did not complete ({why}); see the record."
    blind = [f"⚠️ Degraded: {text}" for text in summ.get("degraded_by") or []]
    nothing = unexplained(summ)  # no runbook cause explains most of it: said first
    return "\n".join([*blind, *([nothing.text()] if nothing else []), _cause(summ)])


def _cause(summ: dict) -> str:
    """The top cause with its verdict, share and strongest evidence, or that none is likely."""
    top = summ.get("top_cause")
    found = next((d for d in summ.get("diagnosis", []) if d["cause"] == top), None)
    if top and not found:  # the record could not be read here: the index still knows
        return f"Top cause: **{top}** (details in the record)"
    if not found:
        return "No cause is likely: check the overview and the logs; escalate if it persists."
    share = found.get("explained_share")
    explains = f", explains {100 * share:.0f}% of the symptom" if share is not None else ""
    out = [f"Top cause: **{top}** — {found['verdict']} ({found['score']:.2f}{explains})"]
    others = (summ.get("top_causes") or [])[1:]
    if others:
        out.append(
            "Contributing as well: "
            + ", ".join(f"{t['cause']} ({100 * (t['explained_share'] or 0):.0f}%)" for t in others)
        )
    strongest = found.get("strongest") or [e for e in found["evidence"] if e.startswith("✔")]
    out += [f"- {e}" for e in strongest[:2]]
    return "\n".join(out)


def _held(summ: dict) -> bool | None:
    """The verification's answer: every check a query could answer holds (None: none could)."""
    from runbook_lib.diagnosis.postcheck import verified

    return verified(summ.get("post_checks") or [])


def _link(link: str) -> list[str]:
    return [f"Investigation: {link}"] if link else []


def _overview_png(output_dir: Path, record_name: str) -> Path | None:
    """The assessment's four-panel overview, cut out of the executed notebook once."""
    import base64

    out = output_dir / ".notify" / f"{record_name}-overview.png"
    if out.exists():
        return out
    try:
        nb = json.loads((output_dir / record_name / "record.ipynb").read_text())
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "run.assess()" not in "".join(cell["source"]):
            continue
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png:
                out.parent.mkdir(parents=True, exist_ok=True)
                part = out.with_suffix(f".{threading.get_ident()}.part")
                part.write_bytes(base64.b64decode(png))
                os.replace(part, out)  # lanes for two targets may cut it at once
                return out
    return None


# ---------------------------------------------------------------------- sending
def send(url: str, msg: Message) -> tuple[bool, str]:
    """One message to one Apprise URL: (answered, what went wrong)."""
    ok, why, _ = send_once(url, msg)
    return ok, why


def send_once(url: str, msg: Message) -> tuple[bool, str, bool]:
    """(answered, what went wrong, whether retrying cannot help: a URL Apprise does not
    know). Apprise's warnings are captured per call; lanes run in parallel, so a line may
    rarely come from another target's call."""
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return False, "not a URL Apprise knows (check the scheme in notify.yml)", True
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
        attach = apprise.AppriseAttachment(str(msg.attach)) if msg.attach else None
        ok = ap.notify(
            body=msg.body, title=msg.title, body_format=apprise.NotifyFormat.MARKDOWN, attach=attach
        )
        text = log.getvalue().strip().splitlines()
    return bool(ok), (text[-1] if text else "" if ok else "the service did not accept it"), False


class Sender:
    """Drains the outbox in a background thread: expands events into deliveries per the
    routing, and sends what is due, each target in its own lane so that a slow or failing
    target holds up only its own messages; retries with backoff."""

    def __init__(
        self, index: Index, config: NotifyConfig, output_dir: Path, poll_s: float = 1.0
    ) -> None:
        self.index, self.config, self.output_dir = index, config, Path(output_dir)
        self.box = ob.Outbox(index)
        self.poll_s = poll_s
        self.started_at = time.time()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._lanes = ThreadPoolExecutor(
            max_workers=max(1, min(8, len(config.targets))), thread_name_prefix="notify"
        )
        self._busy: dict[str, Future] = {}  # target -> its lane at work

    def start(self) -> Sender:
        self._thread = threading.Thread(target=self._loop, name="notify-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(10)
        self._lanes.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(wait=False)
            except Exception as exc:  # the database is away: try again on the next tick
                print(f"runbook serve: notifications: {exc}", file=sys.stderr)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def step(self, now: float | None = None, wait: bool = True) -> int:
        """One pass: expand, claim what is due for the targets not busy, hand each target's
        deliveries to its lane. With `wait`, returns the messages this pass sent; `now`
        fixes the clock (tests)."""
        clock = (lambda: now) if now is not None else time.time
        backlog = self.started_at - self.config.backlog_hours * 3600
        self.box.expand(self.route, clock(), not_before=backlog)
        self._busy = {t: f for t, f in self._busy.items() if not f.done()}
        due = self.box.claim(clock(), skip_targets=frozenset(self._busy))
        lanes: dict[str, list[ob.Delivery]] = {}
        for d in due:
            lanes.setdefault(d.target, []).append(d)
        futures = {t: self._lanes.submit(self._lane, ds, clock) for t, ds in lanes.items()}
        self._busy.update(futures)
        return sum(f.result() for f in futures.values()) if wait else 0

    def route(self, ev: ob.Event) -> list[tuple[str, float]]:
        inc = self.index.incident(ev.incident_id)
        sev, rb = inc["severity"], inc["runbook"]
        quiet = self.config.quiet_hours
        when = quiet.resume_at(time.time(), sev) if quiet else 0.0
        return [(t.name, when) for t in self.config.targets if t.wants(ev.kind, sev, rb)]

    def _lane(self, ds: list[ob.Delivery], clock) -> int:
        """One target's due deliveries, in order. A message that cannot be made is given up
        and the next goes; when the target fails, the rest wait behind the failed one."""
        sent = 0
        for i, d in enumerate(ds):
            target = self.config.target(d.target)
            if target is None:
                self.box.give_up(d, f"target {d.target!r} is no longer in notify.yml")
                continue
            try:
                msg = compose(d.event, self.index, self.output_dir, self.config.base_url)
            except Exception as exc:  # this message cannot be made: retrying will not help
                self.box.give_up(d, f"cannot compose: {type(exc).__name__}: {exc}")
                continue
            if not self.box.renew(d, clock()):
                continue  # our lease ran out and another sender has it: do not send
            ok, why, permanent = send_once(target.url, msg)
            if ok:
                sent += self.box.sent(d)
                continue
            if permanent:
                for rest in ds[i:]:
                    self.box.give_up(rest, why)
                break
            r = self.config.retry
            retry_at = self.box.failed(d, why, clock(), r.base_s, r.max_s, r.max_attempts)
            for rest in ds[i + 1 :]:  # not tried: they go after the failed one, in order
                self.box.postpone(rest, retry_at or clock())
            break
        return sent


def sample() -> Message:
    """What `runbook notify test` sends."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return Message(
        "🚨 runbook notify test",
        f"A test message from `runbook notify test` at {now} UTC. "
        "Investigations, resolves and verifications will arrive here like this.",
    )
