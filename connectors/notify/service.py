"""Who is told, through which channels, and the record that each event went out once per channel."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from canonical.authority import ApprovalAuthority, authority_refusal
from canonical.notifications import APPROVAL_KINDS, Message, Notice
from connectors.errors import Rejected
from connectors.notify.channels import NotifyPort, SlackWebhookNotifier, SmtpNotifier
from settings import Settings
from stores.notifications import NotificationLog

log = logging.getLogger("revops.notify")


class SendLog(NotificationLog):
    """``(event_key, channel)`` pairs already sent (:class:`stores.notifications.NotificationLog`), shared by every
    worker of a deployment that shares its database (``NOTIFICATIONS_URL``: a SQLite file or a PostgreSQL URL)."""


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
    return Notifications(channels=channels, send_log=SendLog(settings.notifications_database_url),
                         authority=settings.approval_authority(), operations=settings.notify_operations,
                         inbox_url=settings.approvals_base_url,
                         ui_url=f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{namespace}")
