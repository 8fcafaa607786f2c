"""The index's database: SQLite on one machine (the default), PostgreSQL when several
receivers and workers share it. One SQLAlchemy Core engine serves both; the schema comes
from the Alembic migrations in `storage/migrations/`, applied when the database is opened.
What is stored in it (incidents, runs, the outbox) is the business of the modules that use
it; this module gives them transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.storage.migrations import schema

T = TypeVar("T")


class Database:
    """The index's database at a SQLite file `path`, or at a database `url`."""

    def __init__(self, path: Path | str | None = None, *, url: str | None = None) -> None:
        if url is None:
            url = f"sqlite:///{path}"
        self.path = Path(url.split("///", 1)[1]) if url.startswith("sqlite:///") else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = schema.engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        schema.upgrade(self.engine)

    @property
    def where(self) -> str:
        """What to name in a message: the file, or the database without its password."""
        return str(self.path) if self.path else self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction, durable when the block ends without error (SQLite:
        BEGIN IMMEDIATE and synchronous=FULL; PostgreSQL: its commit)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection."""
        with self.engine.connect().execution_options(readonly=True) as conn:
            yield conn

    def insert(self, table: sa.Table):
        """An INSERT with this dialect's `on_conflict_do_nothing` and `returning`."""
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql if self.postgres else sqlite).insert(table)

    def lock(self, conn: Connection, keys: set[tuple[str, str]]) -> None:
        """PostgreSQL: one receiver at a time decides for an instance and runbook family
        (locks taken in one order, so two receivers never wait on each other). SQLite's
        BEGIN IMMEDIATE already serializes every writer."""
        for runbook, instance in sorted(keys) if self.postgres else ():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                         {"k": f"{runbook}|{instance}"})  # fmt: skip

    def close(self) -> None:
        self.engine.dispose()


def by_incident(
    conn: Connection,
    table: sa.Table,
    incident_ids: list[int],
    order: tuple[sa.ColumnElement, ...],
    build: Callable[[sa.Row], T],
) -> dict[int, list[T]]:
    """The rows of `table` of these incidents, in `order`, each built by `build`, grouped by
    incident (one query for all: a page lists many incidents)."""
    out: dict[int, list[T]] = {}
    if not incident_ids:
        return out
    q = sa.select(table).where(table.c.incident_id.in_(incident_ids)).order_by(*order)
    for r in conn.execute(q):
        out.setdefault(r.incident_id, []).append(build(r))
    return out
