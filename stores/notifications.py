"""The notification send log (sqlmodel): which ``(event_key, channel)`` pairs went out, so a notice is sent once
per channel across activity retries, worker restarts and every worker sharing the database (SQLite under
``data_dir`` by default, PostgreSQL by ``NOTIFICATIONS_URL``). Recording is ``INSERT … ON CONFLICT DO NOTHING``:
the first record of a pair stands.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from stores.database import open_engine
from stores.events import utcnow


class SentNotice(SQLModel, table=True):
    """One notice sent (or refused for good) through one channel."""

    __tablename__ = "notification_sent"

    event_key: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    outcome: str
    at: datetime = Field(default_factory=utcnow)


TABLES = [SentNotice.__table__]  # type: ignore[attr-defined]
LEGACY_TABLE = "sent"  # the SQLite file before this store: its rows are carried over once


def notifications_url(location: str | Path) -> str:
    """A SQLAlchemy URL as given, or a SQLite file named by its path."""
    text_location = str(location)
    return text_location if "://" in text_location else f"sqlite:///{text_location}"


def notifications_engine(location: str | Path) -> Engine:
    engine = open_engine(notifications_url(location), TABLES)
    if engine.dialect.name == "sqlite" and inspect(engine).has_table(LEGACY_TABLE):
        with engine.begin() as connection:
            connection.execute(text(f"INSERT OR IGNORE INTO notification_sent (event_key, channel, outcome, at) "
                                    f"SELECT event_key, channel, outcome, datetime(at) FROM {LEGACY_TABLE}"))
            connection.execute(text(f"DROP TABLE {LEGACY_TABLE}"))
    return engine


def was_sent(*, session: Session, event_key: str, channel: str) -> bool:
    return session.get(SentNotice, (event_key, channel)) is not None


def record_sent(*, session: Session, event_key: str, channel: str, outcome: str = "sent") -> bool:
    """Record the pair unless it is recorded; True when this call recorded it."""
    values = {"event_key": event_key, "channel": channel, "outcome": outcome, "at": utcnow()}
    insert: Any = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    made = session.execute(insert(SentNotice).values(**values).on_conflict_do_nothing(
        index_elements=["event_key", "channel"]).returning(col(SentNotice.event_key))).first()
    session.commit()
    return made is not None


def sent_notices(*, session: Session, event_key: str) -> list[SentNotice]:
    return list(session.exec(select(SentNotice).where(SentNotice.event_key == event_key)).all())


class NotificationLog:
    """The send log as the notifier uses it, off the event loop."""

    def __init__(self, location: str | Path) -> None:
        self.engine = notifications_engine(location)

    def _sent(self, event_key: str, channel: str) -> bool:
        with Session(self.engine) as session:
            return was_sent(session=session, event_key=event_key, channel=channel)

    def _record(self, event_key: str, channel: str, outcome: str) -> bool:
        with Session(self.engine) as session:
            return record_sent(session=session, event_key=event_key, channel=channel, outcome=outcome)

    async def sent(self, event_key: str, channel: str) -> bool:
        return await asyncio.to_thread(self._sent, event_key, channel)

    async def record(self, event_key: str, channel: str, outcome: str = "sent") -> bool:
        return await asyncio.to_thread(self._record, event_key, channel, outcome)

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["NotificationLog", "SentNotice", "notifications_engine", "notifications_url", "record_sent",
           "sent_notices", "was_sent"]
