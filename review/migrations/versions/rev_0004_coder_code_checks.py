"""The validators' verdict on codes a coder adds or substitutes.

``chart_codes.check_json`` holds it (status, rule ids, every rejection and warning with its reason,
the coder's evidence spans, the code-set and rule versions). Suggestions keep theirs in the chart's
decision; codes added before this revision, or by a library caller whose queue has no validators,
have none (NULL).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("chart_codes", sa.Column("check_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chart_codes") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("check_json")
