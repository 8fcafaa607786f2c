"""The index's tables as SQLAlchemy sees them, and bringing a database up to date.

The tables are created and changed only by the Alembic migrations in `versions/`; these
definitions describe the newest schema for queries (a test compares the two). An index
file written before the migrations existed (no `alembic_version` table) is stamped at the
first revision, which is exactly the schema it has, then upgraded.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
FIRST = "0001"
metadata = sa.MetaData()

INCIDENTS = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("starts_at", sa.Text, nullable=False),
    sa.Column("alertname", sa.Text, nullable=False),
    sa.Column("runbook", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("annotations", sa.Text, nullable=False),
    sa.Column("generator_url", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ends_at", sa.Text),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float),  # when its last alert resolved (or went stale)
    sa.Column("instance", sa.Text, nullable=False, server_default=""),
    sa.Column("mitigated_at", sa.Float),  # a mitigation was done (by a run, or said by a person)
    sa.Column("acknowledged_at", sa.Float),  # an operator took it
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("mitigated_by", sa.Text),  # the operator who said so ('' when a run did it)
    sa.Column("escalated_at", sa.Float),  # the last time a more severe alert took the lead
    sa.UniqueConstraint("fingerprint", "starts_at"),
    sa.Index("ix_incidents_open", "runbook", "instance", "status"),
)

# The alerts of an incident: its first (whose fingerprint and start the incident keeps) and
# the ones that joined it, each with its own state: firing, resolved, or stale (Alertmanager
# no longer listed it for the reconciliation's grace, and no `resolved` came).
ALERTS = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("starts_at", sa.Text, nullable=False),
    sa.Column("alertname", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Text),
    sa.Column("closed_at", sa.Float),
    sa.Column("missing_since", sa.Float),  # firing here, but Alertmanager no longer lists it
    # A slow-burn alert (its rule says so with a label): context of the incident, which
    # neither leads it nor holds it open.
    sa.Column("context", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("fingerprint", "starts_at"),
    sa.Index("ix_alerts_incident", "incident_id"),
)

RUNS = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False, unique=True),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("enqueued_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),  # claimed by a worker (it may still hold the run)
    sa.Column("finished_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text),
    sa.Column("top_cause", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("location", sa.Text),  # where the record is (a path or fsspec URL)
    sa.Column("dispatched_at", sa.Float),  # when its task was last sent (distributed mode)
    # Why the run exists: '' for an incident's first investigation and its verification,
    # `escalated:<alert fingerprint>`, `operator:<action id>`, `mitigation:<action id>`, ...
    sa.Column("trigger", sa.Text, nullable=False, server_default=""),
    sa.Column("alertname", sa.Text),  # the alert that led it, and its severity
    sa.Column("severity", sa.Text),
    sa.Column("held_since", sa.Float),  # first held back for a more severe pending alert
    sa.Column("hold_note", sa.Text),  # what it waited for
    sa.Column("verified", sa.Boolean),  # a verification's answer: the fix held (None: unknown)
    sa.Column("requested_by", sa.Text),  # the operator who asked for it
    sa.Column("begun_at", sa.Float),  # its worker passed the hold: the notebook runs
    sa.UniqueConstraint("incident_id", "kind", "trigger", name="uq_runs_incident_kind_trigger"),
)


# The outbox (storage/outbox.py): events written with what they report, one delivery per
# event and notification target.
EVENTS = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expanded_at", sa.Float),  # when its deliveries were made
    sa.Column("detail", sa.Text),  # JSON: what the message says beyond the incident
    sa.Index("ix_events_unexpanded", "expanded_at"),
)

DELIVERIES = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # pending | sending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("sent_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("event_id", "target"),
    sa.Index("ix_deliveries_due", "state", "next_at"),
)


# What people did on an incident, with who and when; `nonce` makes a replayed form a no-op.
ACTIONS = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    sa.Column("nonce", sa.Text, unique=True),
    sa.Column("run_id", sa.Integer),  # the run it started, if any
    sa.Index("ix_actions_incident", "incident_id"),
)

# The chat message each target got first for an incident: follow-ups reply in its thread.
THREADS = sa.Table(
    "threads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("ts", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("incident_id", "target"),
)


def alembic_config(connection: sa.Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*['"]([^'"]*)['"]""", re.M)


@functools.cache
def head() -> str | None:
    """The newest revision in `versions/`: the one no other revision follows, read from the
    files' `revision` and `down_revision` lines; None when there is not exactly one (a
    branch: Alembic decides)."""
    revisions, follow = set(), set()
    for path in (HERE / "versions").glob("*.py"):
        if path.name.startswith((".#", "__init__")):
            continue  # an editor's lock file, the package: Alembic passes them over too
        found = dict(m.groups() for m in REVISION.finditer(path.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
            follow.add(found.get("down_revision"))
    heads = revisions - follow
    return heads.pop() if len(heads) == 1 else None


def _at(conn: Connection) -> set[str]:
    """The revisions the database says it is at (one, unless branches were merged)."""
    return {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; receivers starting together take turns.
    An index at the newest revision already is left alone without Alembic: on one,
    `runbook incidents` took 0.75 CPU-s with Alembic and 0.45 without (medians of 16 runs)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7349102)")  # one migrator
        tables = set(sa.inspect(conn).get_table_names())
        newest = head()
        if newest is not None and "alembic_version" in tables and _at(conn) == {newest}:
            return
        from alembic import command

        cfg = alembic_config(conn)
        if "incidents" in tables and "alembic_version" not in tables:
            command.stamp(cfg, FIRST)  # an index from before the migrations
        command.upgrade(cfg, "head")


def engine(url: str) -> Engine:
    """An engine for the index: SQLite with WAL, durable commits and write transactions
    that take the lock at BEGIN; PostgreSQL with a small pool."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = sa.create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, poolclass=sa.NullPool
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk (fsync)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine
