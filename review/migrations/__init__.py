"""Alembic migrations of the review database (``medcode.review._store`` runs them on open)."""
