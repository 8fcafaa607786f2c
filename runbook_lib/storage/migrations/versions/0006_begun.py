"""When a run began: its worker passed its hold and started the notebook. Until then a
claimed run's lead may still pass to another run of its incident (`RunQueue.begin`).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("begun_at", sa.Float))
