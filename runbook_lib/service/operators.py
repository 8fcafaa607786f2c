"""Who may act on incidents: named operators, each with a token of their own.

Viewers read the incident pages; operators also act on them (acknowledge, silence, approve a
mitigation), and every action is written with the operator's name. `runbook operator add
NAME` prints a new token once; the file keeps the name and a SHA-256 of the token, never the
token, and is readable by its owner only. The receiver reads the file again when it changes,
so adding or removing an operator needs no restart, and a removed operator's sessions end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


class OperatorsError(ValueError):
    """The operators file cannot be read or changed as asked; names the file and why."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Operator:
    name: str
    token_sha256: str
    added_at: str


class Operators:
    """The operators file at `path` (JSON: {"operators": [{name, token_sha256, added_at}]})."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: tuple[tuple[int, int, int], list[Operator]] | None = None

    def all(self) -> list[Operator]:
        """The operators, read again only when the file changed; [] without a file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OperatorsError(
                f"cannot read the operators file {self.path}: {exc.strerror}"
            ) from None
        version = (st.st_ino, st.st_mtime_ns, st.st_size)  # a rewrite is a new file (inode)
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, self._read())
        return self._cache[1]

    def _read(self) -> list[Operator]:
        try:
            rows = json.loads(self.path.read_text())["operators"]
            return [Operator(r["name"], r["token_sha256"], r.get("added_at", "")) for r in rows]
        except OSError as exc:
            raise OperatorsError(
                f"cannot read the operators file {self.path}: {exc.strerror}"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise OperatorsError(f"the operators file {self.path} is not what `runbook operator "
                                 f"add` writes: {exc!r}") from None  # fmt: skip

    def named(self, token_sha256: str) -> str | None:
        """The operator whose token has this digest (compared in constant time), or None."""
        found = None
        for op in self.all():
            if hmac.compare_digest(op.token_sha256.encode(), token_sha256.encode()):
                found = op.name
        return found

    def add(self, name: str) -> str:
        """A new operator; returns their token (shown once, never stored)."""
        if not NAME.fullmatch(name):
            raise OperatorsError(f"operator name {name!r}: use letters, digits and . _ @ + - "
                                 "(up to 64, starting with a letter or digit)")  # fmt: skip
        ops = self.all()
        if any(op.name == name for op in ops):
            raise OperatorsError(f"operator {name} exists in {self.path}; `runbook operator "
                                 f"remove {name}` first to give them a new token")  # fmt: skip
        token = secrets.token_urlsafe(32)
        added = datetime.now(UTC).isoformat(timespec="seconds")
        self._write([*ops, Operator(name, digest(token), added)])
        return token

    def remove(self, name: str) -> None:
        ops = self.all()
        if not any(op.name == name for op in ops):
            raise OperatorsError(f"no operator {name} in {self.path}")
        self._write([op for op in ops if op.name != name])

    def _write(self, ops: list[Operator]) -> None:
        """Replace the file whole (a reader never sees half of it), owner-only from the
        first byte."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        rows = [op.__dict__ for op in ops]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"operators": rows}, f, indent=1)
        os.replace(tmp, self.path)
        self._cache = None
