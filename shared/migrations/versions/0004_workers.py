"""workers: each worker node's name and when its main process last reported, so that `status` can say a job is
waiting for a worker, or that none has been alive since some time, instead of showing an ETA

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")
