"""The notification send log on SQLite and PostgreSQL (``store_url``): a pair is recorded once, whoever records
it first (threads standing in for workers); a SQLite send log from before the store keeps what it had sent."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlmodel import Session

from stores.notifications import NotificationLog, notifications_engine, record_sent, sent_notices


async def test_notification_log_records_each_pair_once(store_url: str) -> None:
    log = NotificationLog(store_url)
    try:
        before = await log.sent("q2c-1:run:notice-approval", "slack")
        first = await log.record("q2c-1:run:notice-approval", "slack")
        again = await log.record("q2c-1:run:notice-approval", "slack", "refused")
        other_channel = await log.sent("q2c-1:run:notice-approval", "email")
        after = await log.sent("q2c-1:run:notice-approval", "slack")

        def record(_: int) -> bool:
            with Session(log.engine) as session:
                return record_sent(session=session, event_key="q2c-2:run:notice-expiry", channel="email")

        with ThreadPoolExecutor(max_workers=8) as pool:
            winners = await asyncio.to_thread(lambda: list(pool.map(record, range(16))))
        with Session(log.engine) as session:
            rows = sent_notices(session=session, event_key="q2c-1:run:notice-approval")
    finally:
        log.close()

    assert (before, first, again, other_channel, after) == (False, True, False, False, True)
    assert winners.count(True) == 1
    assert [(r.channel, r.outcome) for r in rows] == [("slack", "sent")]  # the first record stands


def test_notification_log_carries_over_a_legacy_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "notifications.sqlite"
    with sqlite3.connect(path) as db:  # the file as the send log wrote it before this store
        db.execute("CREATE TABLE sent (event_key TEXT NOT NULL, channel TEXT NOT NULL, outcome TEXT NOT NULL, "
                   "at TEXT NOT NULL, PRIMARY KEY (event_key, channel))")
        db.execute("INSERT INTO sent VALUES ('q2c-9:run:notice-failed', 'slack', 'sent', "
                   "'2026-11-01T10:00:00+00:00')")
    engine = notifications_engine(path)
    try:
        with Session(engine, expire_on_commit=False) as session:
            rows = sent_notices(session=session, event_key="q2c-9:run:notice-failed")
            recorded_again = record_sent(session=session, event_key="q2c-9:run:notice-failed", channel="slack")
    finally:
        engine.dispose()

    assert [(r.channel, r.outcome, r.at.year) for r in rows] == [("slack", "sent", 2026)]
    assert recorded_again is False
