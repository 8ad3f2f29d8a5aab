"""Note metadata on charts: provider id, department, payer and encounter date (all optional).

The monitoring reports (drift, dollars at risk, clinician documentation feedback, KPIs) group
charts by them. Charts coded before this revision have none (NULL).

Revision ID: 0003
Revises: 0002 (the governance tables; nothing here depends on them: the two were written side by side)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("provider_id", "department", "payer", "encounter_date")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("charts", sa.Column(name, sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charts") as batch:  # SQLite drops columns by rebuilding the table
        for name in reversed(COLUMNS):
            batch.drop_column(name)
