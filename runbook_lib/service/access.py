"""Who is asking, as FastAPI dependencies: `Depends(access.viewer)` reads the incident pages,
`Depends(access.operator)` acts on incidents.

A viewer has the viewer token (or the webhook token, when the server is told to accept it);
an operator has a token of their own (service/operators.py), so every action names a person.
Either token works as a bearer header (scripts) or typed once into `/signin`, which keeps a
signed session cookie holding the role, the operator's name, a digest of the credential
(never the token: a new viewer token or a removed operator ends the session) and the
session's CSRF token. A browser's POST must carry that CSRF token and must not come from
another site (Origin, Referer, Sec-Fetch-Site); a bearer header is never sent by a browser on
its own, so a bearer POST needs neither.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import HTTPException, Request

from runbook_lib.service.operators import Operators, OperatorsError, digest

log = logging.getLogger("runbook.access")

SESSION_COOKIE = "runbook_session"
MAX_FORM_BYTES = 4096
NEEDS_OPERATOR = (
    "this needs an operator credential: sign in with an operator's token (`runbook operator "
    "add NAME` gives one) or send it as a bearer header; the viewer token only reads"
)


@dataclass(frozen=True)
class Who:
    role: str  # viewer | operator
    actor: str  # the operator's name (what actions are recorded under); "viewer" otherwise
    session: bool  # signed in through /signin: its POSTs need the CSRF token

    @property
    def operator(self) -> bool:
        return self.role == "operator"


def _viewer_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class Access:
    """The credentials of the pages: `viewer_tokens` read, the operators of `operators` act."""

    def __init__(self, viewer_tokens: list[str], operators: Operators | None = None) -> None:
        self.viewer_tokens = [t for t in viewer_tokens if t]
        self.viewer_digests = {_viewer_digest(t) for t in self.viewer_tokens}
        self.operators = operators

    def identify(self, token: str) -> tuple[Who, str] | None:
        """Who holds `token`, with the credential digest a session keeps; None for nobody."""
        if not token:
            return None
        if any(hmac.compare_digest(token.encode(), t.encode()) for t in self.viewer_tokens):
            return Who("viewer", "viewer", session=False), _viewer_digest(token)
        name = self._operator(digest(token))
        return (Who("operator", name, session=False), digest(token)) if name else None

    def _operator(self, token_sha256: str) -> str | None:
        if self.operators is None:
            return None
        try:
            return self.operators.named(token_sha256)
        except OperatorsError as exc:  # nobody acts until the file is fixed; say why
            log.error("%s; nobody can act on incidents until it is fixed", exc)
            return None

    def _from_session(self, request: Request) -> Who | None:
        s = request.session
        role, cred = s.get("role"), str(s.get("cred", ""))
        if role == "viewer" and cred in self.viewer_digests:
            return Who("viewer", "viewer", session=True)
        if role == "operator" and cred and self._operator(cred) == s.get("actor"):
            return Who("operator", s["actor"], session=True)
        return None

    # -- the dependencies ------------------------------------------------------------------
    def viewer(self, request: Request) -> Who:
        """Anyone who may read: a bearer token, else the session; a browser without either
        is sent to sign in (303), anything else gets 401."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if found := self.identify(bearer):
            return found[0]
        if who := self._from_session(request):
            return who
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "sign in first", {"Location": f"/signin?next={quote(target)}"})
        raise HTTPException(401, "the incident pages need the viewer token (a bearer header, "
                            "or sign in at /signin)")  # fmt: skip

    def operator(self, request: Request) -> Who:
        """An operator (403 naming what is needed for a viewer)."""
        who = self.viewer(request)
        if not who.operator:
            raise HTTPException(403, NEEDS_OPERATOR)
        return who

    # -- sessions --------------------------------------------------------------------------
    def sign_in(self, request: Request, token: str) -> Who | None:
        """A new session for whoever holds `token`; None (and no session) for nobody."""
        found = self.identify(token)
        if found is None:
            return None
        who, cred = found
        request.session.clear()
        request.session.update(role=who.role, actor=who.actor, cred=cred,
                               csrf=secrets.token_urlsafe(32))  # fmt: skip
        return Who(who.role, who.actor, session=True)

    @staticmethod
    def csrf(request: Request) -> str:
        return str(request.session.get("csrf", ""))

    def check_form(self, request: Request, who: Who, csrf: str) -> None:
        """A browser's POST: from this site (403 naming the header that says otherwise) and
        with its session's CSRF token (compared in constant time; 403)."""
        if not who.session:
            return
        if reason := cross_site(request):
            raise HTTPException(403, f"refused a cross-site request: {reason}")
        expected = self.csrf(request)
        if not (csrf and expected and hmac.compare_digest(csrf.encode(), expected.encode())):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the "
                                "incident page and try again")  # fmt: skip


def cross_site(request: Request) -> str | None:
    """Why this request comes from another site, or None. Browsers send Sec-Fetch-Site and
    Origin on a POST; Referer is checked when it is there. Behind a proxy, it must pass the
    Host header on (nginx: `proxy_set_header Host $host`)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    host = request.headers.get("host", "")
    for header in ("origin", "referer"):
        given = request.headers.get(header)
        if given is not None and urlsplit(given).netloc != host:
            return f"{header.title()} {given!r} is not this server ({host})"
    return None


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """A small urlencoded form's fields (the first value of each); 413 past `limit` bytes,
    without reading more than that."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the form is over {limit} bytes")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
