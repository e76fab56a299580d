"""runs.pid: which process holds a running run (with worker and heartbeat_at, the run's lease);
artifacts.size as a 64-bit integer (files of 2 GiB and more)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
    op.create_index("ix_runs_state", "runs", ["state"])
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
    op.drop_index("ix_runs_state", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid")
