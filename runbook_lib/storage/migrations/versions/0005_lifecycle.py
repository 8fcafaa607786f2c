"""Incidents that follow the fault: more than one investigation per incident (escalation,
re-investigation by an operator, an approved mitigation), what people did, slow-burn alerts
as context, the verification's answer, and the chat threads follow-ups go to.

A run was unique by (incident, kind); it is now unique by (incident, kind, trigger), where
`trigger` says why the run exists ('' for the incident's first investigation and its
verification, as before, so existing rows keep their meaning).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s"}


def upgrade() -> None:
    _drop_run_uniqueness()
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trigger", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("alertname", sa.Text))
        batch.add_column(sa.Column("severity", sa.Text))
        batch.add_column(sa.Column("held_since", sa.Float))
        batch.add_column(sa.Column("hold_note", sa.Text))
        batch.add_column(sa.Column("verified", sa.Boolean))
        batch.add_column(sa.Column("requested_by", sa.Text))
        batch.create_unique_constraint(
            "uq_runs_incident_kind_trigger", ["incident_id", "kind", "trigger"]
        )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("acknowledged_at", sa.Float))
        batch.add_column(sa.Column("acknowledged_by", sa.Text))
        batch.add_column(sa.Column("mitigated_by", sa.Text))
        batch.add_column(sa.Column("escalated_at", sa.Float))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("context", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("detail", sa.Text))
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("nonce", sa.Text, unique=True),
        sa.Column("run_id", sa.Integer),
    )
    op.create_index("ix_actions_incident", "actions", ["incident_id"])
    op.create_table(
        "threads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("incident_id", "target"),
    )
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE runs SET alertname = (SELECT alertname FROM incidents i WHERE i.id = runs.incident_id), "
            "severity = (SELECT severity FROM incidents i WHERE i.id = runs.incident_id)"
        )
    )


def _drop_run_uniqueness() -> None:
    """Drop the (incident_id, kind) constraint of 0001, which neither dialect named alike:
    PostgreSQL named it itself; SQLite has no name, so the batch gives it one to drop."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        with op.batch_alter_table("runs", naming_convention=NAMES, recreate="always") as batch:
            batch.drop_constraint("uq_runs_incident_id_kind", type_="unique")
        return
    for uc in sa.inspect(conn).get_unique_constraints("runs"):
        if sorted(uc["column_names"]) == ["incident_id", "kind"]:
            op.drop_constraint(uc["name"], "runs", type_="unique")
