"""The store: SQLModel tables over any SQLAlchemy URL, migrated by Alembic on open."""

from bot.store.db import open_store

__all__ = ["open_store"]
