"""The index's schema and its Alembic migrations (`versions/`), for SQLite and PostgreSQL."""
