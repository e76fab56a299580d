"""jobs.finalize_worker, finalize_pid, finalize_heartbeat_at: the lease of a job's finalize step, so that a
finalize whose worker died is taken over instead of leaving the job running forever

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("finalize_worker", sa.String(255), nullable=True))
        batch.add_column(sa.Column("finalize_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("finalize_heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("finalize_heartbeat_at")
        batch.drop_column("finalize_pid")
        batch.drop_column("finalize_worker")
