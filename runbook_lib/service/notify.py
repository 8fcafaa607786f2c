"""Getting the finding to the team: every event of an incident (its investigation, an
escalation, what operators and mitigations did, the resolve, the verification), posted to
the channels `notify.yml` names (service/notify_config.py): through Apprise (Slack webhooks,
Mattermost, Teams, Discord, Matrix, e-mail, ntfy, PagerDuty, JSON webhooks, ...) as messages
of their own, or through Slack's Web API with a bot token as one thread per incident whose
first message's status line is kept current.

Messages go through the index's outbox (`storage.outbox`) and a background `Sender`: a run
or a webhook never waits for a chat service, a target that is down delays only its own
messages (retried with exponential backoff), and a restart resumes where it stopped. Which
targets an event goes to is decided when it is expanded, right after it is written, from
the incident's severity then; a target that got any earlier message of an incident gets
its follow-ups too. Each delivery's outcome is one log line on `runbook.notify` and a call
of `on_delivery(target, outcome)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runbook_lib.incidents.index import Index
from runbook_lib.service import slack
from runbook_lib.service.messages import Message, Recall, compose
from runbook_lib.service.notify_config import (
    NotifyConfig,
    QuietHours,
    Retry,
    SlackTarget,
    Target,
    Watched,
)
from runbook_lib.storage import outbox as ob

__all__ = ["Message", "NotifyConfig", "QuietHours", "Retry", "Sender", "SlackTarget", "Target", "Watched",
           "compose", "sample", "send"]  # fmt: skip
log = logging.getLogger("runbook.notify")
OUTCOMES = ("sent", "retried", "given_up")  # what `on_delivery` is told
# Apprise's notify type (a colour or an icon in most services) by the incident's severity.
NOTIFY_TYPES = {"critical": "failure", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class Attempt:
    """How sending one message went."""

    ok: bool
    error: str = ""
    permanent: bool = False  # retrying cannot help (a URL Apprise does not know, a bad token)
    retry_after: float = 0.0  # the service asked us to wait this long (seconds)


def notify_type(severity: str) -> str:
    return NOTIFY_TYPES.get(severity, "info")


def send(target: Target, msg: Message) -> Attempt:
    """One message to one target, on its own (`runbook notify test`)."""
    if target.slack is None:
        return send_apprise(target.url or "", msg)
    try:
        bot = slack.Slack(target.slack.bearer(), target.slack.api_url)
        bot.post(target.slack.channel, _slack_text(msg, reply=False))
    except (slack.SlackError, ValueError) as exc:
        return _failed(exc)
    return Attempt(True)


def send_apprise(url: str, msg: Message) -> Attempt:
    """One message to one Apprise URL, with the notify type of its severity; when it fails,
    the last warning its plugin logged says why. Lanes send to several targets at once
    and Apprise logs through one logger, from threads of its own: each call's plugin logs
    to a logger of this lane (a child of Apprise's), which only this call listens to."""
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return Attempt(False, "not a URL Apprise knows (check the scheme in notify.yml)", True)
    lane = logging.getLogger(f"apprise.runbook-lane-{threading.get_ident()}")
    for plugin in ap:
        plugin.logger = lane
    with _Warnings(lane) as warned:
        attach = apprise.AppriseAttachment(str(msg.attach)) if msg.attach else None
        ok = ap.notify(body=msg.standalone(), title=msg.title, attach=attach,
                       body_format=apprise.NotifyFormat.MARKDOWN,
                       notify_type=notify_type(msg.severity))  # fmt: skip
    if ok:
        return Attempt(True)
    return Attempt(False, warned[-1] if warned else "the service did not accept it")


class _Warnings(logging.Handler):
    """The warnings `logger` logs while the block runs."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.WARNING)
        self.logger, self.lines = logger, []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> list[str]:
        if self.logger.getEffectiveLevel() > logging.WARNING:
            self.logger.setLevel(logging.WARNING)
        self.logger.addHandler(self)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)


def _slack_text(msg: Message, *, reply: bool) -> str:
    """A thread's first message leads with the incident's status line; a reply needs
    neither that nor to say what it follows."""
    if reply:
        return f"*{msg.title}*\n{slack.mrkdwn(msg.body)}"
    status = f"{msg.status}\n" if msg.status else ""
    return f"{status}*{msg.title}*\n{slack.mrkdwn(msg.standalone())}"


def _failed(exc: Exception) -> Attempt:
    if isinstance(exc, slack.SlackError):
        return Attempt(False, f"Slack: {exc.error}", exc.permanent, exc.retry_after)
    return Attempt(False, str(exc))


class Sender:
    """Drains the outbox in a background thread: expands events into deliveries per the
    routing, and sends what is due, each target in its own lane so that a slow or failing
    target holds up only its own messages; retries with backoff."""

    def __init__(
        self, index: Index, config: NotifyConfig, output_dir: Path, poll_s: float = 1.0,
        *, on_delivery: Callable[[str, str], None] | None = None, recall: Recall | None = None,
        watch: Watched | None = None,
    ) -> None:  # fmt: skip
        """`on_delivery(target, outcome)`: told of each delivery's outcome (one of
        `OUTCOMES`), e.g. to count them; `recall`: one more line under each finding;
        `watch`: notify.yml, read again when it changes (then `config` is its current)."""
        self.index, self.config, self.output_dir = index, config, Path(output_dir)
        self.watch = watch
        self.on_delivery, self.recall = on_delivery, recall
        self.box = ob.Outbox(index)
        self.poll_s = poll_s
        self.started_at = time.time()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._lanes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="notify")  # lazily
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

    def reload(self) -> None:
        """Read notify.yml again at once, changed or not (SIGHUP)."""
        if self.watch:
            self.watch.request()
            self._wake.set()

    def _refresh(self) -> None:
        said = self.watch.poll() if self.watch else None
        if said:
            log.info("notifications: %s", said, extra={"event": "notify_config"})
            self.config = self.watch.config

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
                self.step(wait=False)
            except Exception as exc:  # the database is away: try again on the next tick
                log.warning("notifications: %s (trying again in %.0f s)", exc, self.poll_s)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def step(self, now: float | None = None, wait: bool = True) -> int:
        """One pass: expand, claim what is due for the targets not busy, hand each target's
        deliveries to its lane. With `wait`, returns the messages this pass sent; `now`
        fixes the clock (tests)."""
        if not self.config.targets:  # none (yet): events wait for a notify.yml to name some
            return 0
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
        """The targets of `ev` and when each may have it: those whose filters take the
        incident as it is now, and those that got an earlier message of it (their
        `events:` filter still applies)."""
        inc = self.index.incident(ev.incident_id)
        sev, rb = inc.severity, inc.runbook
        earlier = self.box.targets_of(ev.incident_id, before_event=ev.id)
        quiet = self.config.quiet_hours
        when = quiet.resume_at(time.time(), sev) if quiet else 0.0
        return [
            (t.name, when)
            for t in self.config.targets
            if t.wants(ev.kind, sev, rb) or (t.name in earlier and t.takes(ev.kind))
        ]

    def _lane(self, ds: list[ob.Delivery], clock) -> int:
        """One target's due deliveries, in order. A message that cannot be made is given up
        and the next goes; when the target fails, the rest wait behind the failed one."""
        sent = 0
        for i, d in enumerate(ds):
            target = self.config.target(d.target)
            if target is None:
                self._give_up(d, f"target {d.target!r} is no longer in notify.yml")
                continue
            try:
                msg = self._compose(d.event)
            except Exception as exc:  # this message cannot be made: retrying will not help
                self._give_up(d, f"cannot compose: {type(exc).__name__}: {exc}")
                continue
            if not self.box.renew(d, clock()):
                continue  # our lease ran out and another sender has it: do not send
            tried = self._deliver(target, d, msg, clock())
            if tried.ok:
                sent += self.box.sent(d)
                self._tell(d, "sent", f"sent (attempt {d.attempts})")
                continue
            if tried.permanent:
                for rest in ds[i:]:
                    self._give_up(rest, tried.error)
                break
            r = self.config.retry
            retry_at = self.box.failed(d, tried.error, clock(), r.base_s, r.max_s, r.max_attempts,
                                       at_least=tried.retry_after)  # fmt: skip
            if retry_at is None:
                self._tell(d, "given_up", f"given up after {d.attempts} attempts: {tried.error}")
            else:
                at = datetime.fromtimestamp(retry_at, UTC).strftime("%H:%M:%S")
                self._tell(d, "retried", f"attempt {d.attempts} failed ({tried.error}); "
                                         f"next at {at} UTC")  # fmt: skip
            for rest in ds[i + 1 :]:  # not tried: they go after the failed one, in order
                self.box.postpone(rest, retry_at or clock())
            break
        return sent

    def _compose(self, ev: ob.Event) -> Message:
        return compose(ev, self.index, self.output_dir, self.config.base_url, recall=self.recall)

    def _deliver(self, target: Target, d: ob.Delivery, msg: Message, now: float) -> Attempt:
        if target.slack is None:
            return send_apprise(target.url or "", msg)
        try:
            self._to_slack(target.name, target.slack, d.event, msg, now)
        except (slack.SlackError, ValueError) as exc:
            return _failed(exc)
        return Attempt(True)

    def _to_slack(
        self, name: str, cfg: SlackTarget, ev: ob.Event, msg: Message, now: float
    ) -> None:
        """The incident's first message to this target starts its thread; a follow-up first
        brings the thread's first message up to date (its status line), then replies in the
        thread. In that order, a retry after a failure repeats an idempotent update, never a
        reply."""
        bot = slack.Slack(cfg.bearer(), cfg.api_url)
        thread = self.box.thread(ev.incident_id, name)
        if thread is None:
            posted = bot.post(cfg.channel, _slack_text(msg, reply=False))
            self.box.add_thread(ev.incident_id, name, ob.Thread(posted.channel, posted.ts), now)
            return
        first = self.box.first_sent(ev.incident_id, name)
        top = self._compose_or_none(first) if first is not None else None
        if top is not None:
            bot.update(thread.channel, thread.ts, _slack_text(top, reply=False))
        bot.post(thread.channel, _slack_text(msg, reply=True), thread_ts=thread.ts)

    def _compose_or_none(self, ev: ob.Event) -> Message | None:
        """The thread's first message as it reads now; None (and a log line) when it cannot
        be made: the reply still goes."""
        try:
            return self._compose(ev)
        except Exception:
            log.exception("cannot compose %s of incident %d again to update its status line",
                          ev.kind, ev.incident_id)  # fmt: skip
            return None

    def _give_up(self, d: ob.Delivery, why: str) -> None:
        self.box.give_up(d, why)
        self._tell(d, "given_up", f"given up: {why}")

    def _tell(self, d: ob.Delivery, outcome: str, what: str) -> None:
        """One log line per delivery's outcome, and the `on_delivery` callback."""
        level = {"sent": logging.INFO, "retried": logging.WARNING}.get(outcome, logging.ERROR)
        ev = d.event
        fields = {"target": d.target, "outcome": outcome, "incident_id": ev.incident_id,
                  "event": ev.key}  # fmt: skip
        log.log(level, "%s of incident %d to %s: %s", ev.kind, ev.incident_id, d.target, what,
                extra=fields)  # fmt: skip
        if self.on_delivery is not None:
            try:
                self.on_delivery(d.target, outcome)
            except Exception:  # a broken counter must not stop the messages
                log.exception("on_delivery(%r, %r) failed", d.target, outcome)


def sample() -> Message:
    """What `runbook notify test` sends."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return Message(
        "🚨 runbook notify test",
        f"A test message from `runbook notify test` at {now} UTC. "
        "Investigations, escalations, resolves and what people did will arrive here like this.",
    )
