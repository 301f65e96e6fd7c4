"""Who is told, through which channels, and the record that each event went out once per channel."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from canonical.authority import ApprovalAuthority, authority_refusal
from canonical.notifications import APPROVAL_KINDS, Message, Notice
from connectors.errors import Rejected
from connectors.notify.channels import NotifyPort, SlackWebhookNotifier, SmtpNotifier
from settings import Settings

log = logging.getLogger("revops.notify")


class SendLog:
    """``(event_key, channel)`` pairs already sent, in SQLite, shared by every worker of a deployment that
    shares the file (point ``NOTIFICATIONS_DB`` at one place)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS sent (event_key TEXT NOT NULL, channel TEXT NOT NULL, "
                       "outcome TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (event_key, channel))")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level=None)

    def _sent(self, event_key: str, channel: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM sent WHERE event_key = ? AND channel = ?", (event_key, channel))
            return row.fetchone() is not None

    def _record(self, event_key: str, channel: str, outcome: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?)",
                       (event_key, channel, outcome, datetime.now(UTC).isoformat()))

    async def sent(self, event_key: str, channel: str) -> bool:
        return await asyncio.to_thread(self._sent, event_key, channel)

    async def record(self, event_key: str, channel: str, outcome: str = "sent") -> None:
        await asyncio.to_thread(self._record, event_key, channel, outcome)


class Notifications:
    """Turns a notice into a message for its audience and sends it through every channel, once each."""

    def __init__(self, *, channels: Sequence[NotifyPort], send_log: SendLog, authority: ApprovalAuthority,
                 operations: Sequence[str], inbox_url: str, ui_url: str) -> None:
        self.channels = list(channels)
        self.send_log = send_log
        self.authority = authority
        self.operations = list(operations)
        self.inbox_url = inbox_url
        self.ui_url = ui_url

    def message(self, notice: Notice) -> Message:
        if notice.kind in APPROVAL_KINDS:
            facts = notice.facts
            recipients = [a.email for a in self.authority.approvers if a.email
                          and (facts is None or authority_refusal(self.authority, facts, a.id, []) is None)]
            link = f"{self.inbox_url}/inbox"
        else:
            recipients, link = list(self.operations), f"{self.ui_url}/workflows/{notice.workflow_id}"
        return Message(event_key=notice.event_key, kind=notice.kind, subject=notice.title, text=notice.text,
                       link=link, recipients=recipients)

    async def tell(self, notice: Notice) -> list[str]:
        """Send through the channels that have not sent this event yet; the channels used now."""
        message = self.message(notice)
        used: list[str] = []
        for channel in self.channels:
            if await self.send_log.sent(notice.event_key, channel.channel):
                continue
            try:
                await channel.send(message)
            except Rejected as exc:  # a wrong address or payload: retrying will not help; say so and go on
                log.warning("%s refused notice %s: %s", channel.channel, notice.event_key, exc)
                await self.send_log.record(notice.event_key, channel.channel, "refused")
                continue
            await self.send_log.record(notice.event_key, channel.channel)
            used.append(channel.channel)
        return used

    async def aclose(self) -> None:
        for channel in self.channels:
            await channel.aclose()


def notifications_from_settings(settings: Settings) -> Notifications:
    channels: list[NotifyPort] = []
    if settings.notify_slack_webhook_url:
        channels.append(SlackWebhookNotifier(settings.notify_slack_webhook_url))
    if settings.notify_smtp_host:
        channels.append(SmtpNotifier(host=settings.notify_smtp_host, port=settings.notify_smtp_port,
                                     sender=settings.notify_from, username=settings.notify_smtp_username,
                                     password=settings.notify_smtp_password, starttls=settings.notify_smtp_starttls))
    namespace = os.environ.get("TEMPORAL_NAMESPACE", "default")
    return Notifications(channels=channels, send_log=SendLog(settings.notifications_db),
                         authority=settings.approval_authority(), operations=settings.notify_operations,
                         inbox_url=settings.approvals_base_url,
                         ui_url=f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{namespace}")
