"""The notification emulators served for one test, and what they received per event key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller

from sandbox.notify import MailSink, create_webhook_app, start_smtp
from sandbox.serve import RunningApp, free_port, start_in_thread
from settings import Settings


@dataclass
class NotifyEmulators:
    webhook: RunningApp
    smtp: Controller
    mail: MailSink

    @property
    def webhook_url(self) -> str:
        return f"{self.webhook.base_url}/services/T0TEST/B0TEST/secret"

    def configure(self, settings: Settings, **extra: Any) -> Settings:
        return settings.model_copy(update={"notify_slack_webhook_url": self.webhook_url,
                                           "notify_smtp_host": "127.0.0.1", "notify_smtp_port": self.smtp.port,
                                           **extra})

    def slack_events(self) -> Counter[str]:
        """Slack messages per event key (from the message's context block)."""
        counts: Counter[str] = Counter()
        for message in list(self.webhook.app.state.inbox.messages):
            for block in message["body"].get("blocks", []):
                for element in block.get("elements", []) if block.get("type") == "context" else []:
                    counts[element["text"].removeprefix("event ")] += 1
        return counts

    def mail_events(self) -> Counter[str]:
        return Counter(m["event"] for m in self.mail.snapshot())

    def mails(self, event_suffix: str) -> list[dict[str, Any]]:
        return [m for m in self.mail.snapshot() if m["event"].endswith(event_suffix)]


@contextmanager
def notify_emulators() -> Iterator[NotifyEmulators]:
    webhook = start_in_thread(create_webhook_app())
    smtp, mail = start_smtp("127.0.0.1", free_port())
    try:
        yield NotifyEmulators(webhook=webhook, smtp=smtp, mail=mail)
    finally:
        smtp.stop()
        webhook.stop()
