"""Slack with a bot token, through its Web API (slack_sdk): the first message of an incident
is posted to the channel, follow-ups go into its thread, and the first message is updated
so its status line tells what is true now. An incoming webhook (an Apprise URL) can do
neither, which is why a bot token is its own kind of target.

Slack answers most errors with HTTP 200 and `{"ok": false, "error": ...}`, and rate limits
with 429 and Retry-After; both become a `SlackError` that says whether retrying can help
and how long Slack asked us to wait. Retrying is the outbox's job, so the client retries
nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_API_URL = "https://slack.com/api"
# Errors that no retry can cure: the token, the channel or the bot's place in it is wrong.
PERMANENT = frozenset({
    "invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope",
    "channel_not_found", "not_in_channel", "is_archived",
})  # fmt: skip
TIMEOUT_S = 15


class SlackError(Exception):
    """A call Slack did not accept: `error` is Slack's code (or what went wrong on the way),
    `permanent` when retrying cannot help, `retry_after` the seconds Slack asked for."""

    def __init__(self, error: str, *, permanent: bool = False, retry_after: float = 0.0):
        super().__init__(error)
        self.error, self.permanent, self.retry_after = error, permanent, retry_after


@dataclass(frozen=True)
class Posted:
    """Where a message landed: the channel's id (chat.update needs it, not its name) and
    the message's `ts`, which is also its thread's id."""

    channel: str
    ts: str


class Slack:
    """The two calls notifications need, on one bot token."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        from slack_sdk import WebClient

        self.client = WebClient(
            token=token, base_url=api_url.rstrip("/") + "/", timeout=TIMEOUT_S, retry_handlers=[]
        )

    def post(self, channel: str, text: str, thread_ts: str | None = None) -> Posted:
        """chat.postMessage; in the thread of `thread_ts` when given."""
        answer = self._call(self.client.chat_postMessage, channel=channel, text=text,
                            thread_ts=thread_ts, unfurl_links=False)  # fmt: skip
        return Posted(answer["channel"], answer["ts"])

    def update(self, channel: str, ts: str, text: str) -> None:
        """chat.update: the message `ts` of `channel` (an id) now reads `text`."""
        self._call(self.client.chat_update, channel=channel, ts=ts, text=text)

    @staticmethod
    def _call(method, **kwargs) -> dict:
        from slack_sdk.errors import SlackApiError

        try:
            return method(**kwargs).data
        except SlackApiError as exc:
            raise _failure(exc.response) from None
        except OSError as exc:  # refused, unreachable, timed out
            raise SlackError(f"cannot reach Slack: {exc}") from None


def _failure(response) -> SlackError:
    """What Slack's answer says went wrong."""
    data = response.data if isinstance(response.data, dict) else {}
    if response.status_code == 429:
        wait = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return SlackError("ratelimited (HTTP 429)", retry_after=_seconds(wait))
    error = data.get("error") or f"HTTP {response.status_code}"
    return SlackError(error, permanent=error in PERMANENT)


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0


def mrkdwn(markdown: str) -> str:
    """Our messages' Markdown as Slack writes it: bold is one star, not two."""
    return markdown.replace("**", "*")
