"""Alembic environment of the review database.

medcode runs the migrations itself when a store is opened (``ReviewStore``): it builds the Alembic
``Config`` in code and passes its open connection, already inside the transaction that holds the
database lock, as ``config.attributes["connection"]``. No ``alembic.ini`` is needed. To add a
revision, copy ``versions/rev_0001_initial.py``, give it the next id and ``down_revision``, change
the tables in ``medcode/review/_store.py`` to match, and keep dialect specifics in branches on
``op.get_context().dialect.name``; ``tests/test_review_store.py`` checks that the migrated schema
equals the tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from medcode.review._store import metadata


def run_migrations() -> None:
    """Upgrade on the connection medcode passed; offline (SQL script) mode is not supported."""
    if context.is_offline_mode():
        raise RuntimeError("medcode's review migrations run online only (ReviewStore opens the database)")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run medcode's review migrations through ReviewStore, which passes its connection")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():  # joins the caller's transaction
        context.run_migrations()


run_migrations()
