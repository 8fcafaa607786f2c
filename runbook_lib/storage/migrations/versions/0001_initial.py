"""The index as the embedded (SQLite) receiver first wrote it.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "incidents",
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
        sa.Column("resolved_at", sa.Float),
        sa.UniqueConstraint("fingerprint", "starts_at"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False, unique=True),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("enqueued_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text),
        sa.Column("top_cause", sa.Text),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("incident_id", "kind"),
    )
    op.create_index("runs_queued", "runs", ["state", "not_before"])
