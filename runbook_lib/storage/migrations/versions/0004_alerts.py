"""One incident per fault: the alerts that joined each incident, its instance, and when a
mitigation was recorded for it.

Until now an incident was one alert. Each existing incident becomes an incident of one alert
(its own), so the history reads the same.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "alerts",
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
        sa.Column("missing_since", sa.Float),
        sa.UniqueConstraint("fingerprint", "starts_at"),
    )
    op.create_index("ix_alerts_incident", "alerts", ["incident_id"])
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("instance", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("mitigated_at", sa.Float))
    op.create_index("ix_incidents_open", "incidents", ["runbook", "instance", "status"])
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, fingerprint, starts_at, alertname, severity, labels, status, "
            "received_at, ends_at, resolved_at FROM incidents"
        )
    ).all()
    for r in rows:
        instance = json.loads(r.labels).get("instance", "")
        conn.execute(
            sa.text("UPDATE incidents SET instance = :i WHERE id = :id"),
            {"i": instance, "id": r.id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO alerts (incident_id, fingerprint, starts_at, alertname, severity, "
                "labels, status, received_at, ends_at, closed_at) VALUES (:id, :fp, :s, :a, "
                ":sev, :l, :st, :r, :e, :c)"
            ),
            {
                "id": r.id,
                "fp": r.fingerprint,
                "s": r.starts_at,
                "a": r.alertname,
                "sev": r.severity,
                "l": r.labels,
                "st": r.status,
                "r": r.received_at,
                "e": r.ends_at,
                "c": r.resolved_at,
            },  # fmt: skip
        )
