"""Secrets taken out of log lines before any of them is kept as a sample: values of keys
that name a token, key or password; credentials in URLs; Authorization and Bearer values;
AWS, Stripe and GitHub tokens and JWTs."""

from __future__ import annotations

import re

from runbook_lib.evidence.logs.lines import REDACTED

_SECRET_KEY = r"[\w.-]*?(?:token|api[_-]?key|apikey|password|passwd|pwd|secret)"
_KEY_VALUE = re.compile(
    rf"(?<![\w-])(?P<key>\\?[\"']?{_SECRET_KEY}\\?[\"']?)(?P<sep>\s*[:=]\s*)(?P<val>"
    r"\\\"(?:[^\"\\]|\\[^\"])*\\\""  # \"...\" inside a JSON string
    r"|\"(?:[^\"\\]|\\.)*\""  # "..."
    r"|'[^']*'"
    r"|(?!\[REDACTED\])[^\s,;&\"'}\]\)\\]+)",
    re.I,
)
# Group 1 is kept (a user, a scheme, a token's kind); what follows it is the secret.
_SECRETS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?!\[REDACTED\])[^\s@/]+(?=@)", re.I),
    re.compile(
        r"(\bauthorization\\?[\"']?\s*[:=]\s*\\?[\"']?(?:(?:Basic|Digest|Token)\s+)?)"
        r"(?!Bearer\b)(?!\[REDACTED\])[^\s\"',;\\]+",
        re.I,
    ),
    re.compile(r"\b(Bearer\s+)(?!\[REDACTED\])[A-Za-z0-9\-._~+/]+=*", re.I),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b((?:sk|rk)_(?:live|test)_)[0-9A-Za-z]+"),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{20,}"),
    re.compile(r"()\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]*"),  # a JWT outside any key
)


def _redact_value(m: re.Match[str]) -> str:
    val = m.group("val")
    quote = next((q for q in ('\\"', '"', "'") if val.startswith(q)), "")
    return f"{m.group('key')}{m.group('sep')}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """Hide secret values, keeping the key or prefix (`password=[REDACTED]`,
    `sk_live_[REDACTED]`) so a reader knows what was there without seeing it."""
    text = _KEY_VALUE.sub(_redact_value, text)
    for regex in _SECRETS:
        text = regex.sub(lambda m: m.group(1) + REDACTED, text)
    return text
