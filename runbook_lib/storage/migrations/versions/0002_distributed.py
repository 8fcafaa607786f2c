"""Where each record is, and when its task was sent (distributed mode).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("location", sa.Text))
        batch.add_column(sa.Column("dispatched_at", sa.Float))
