"""Opening the store: make the engine, then bring the schema to the newest migration."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import create_engine

from bot.errors import SleuthError

MIGRATIONS = "bot.store:migrations"


def open_store(url: str) -> Engine:
    """An engine on `url` with every migration applied; a SQLite file's folder is created."""
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        migrate(engine)
    except Exception as exc:  # errors differ per backend and OS; the user needs the URL and cause
        safe = parsed.render_as_string(hide_password=True)
        raise SleuthError(f"cannot open the store at {safe}: {exc}") from exc
    return engine


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision` on this engine's database."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Foreign keys are off by default in SQLite; WAL lets the bot read while intake writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
