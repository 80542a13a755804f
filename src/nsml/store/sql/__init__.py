"""SQLAlchemy implementation of the store (SQLite by default, PostgreSQL for scale)."""
