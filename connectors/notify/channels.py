"""The channels: a Slack-compatible incoming webhook and SMTP email, each behind ``NotifyPort``.

Errors are the shared connector tree: a transport failure or a 5xx is :class:`Unavailable` (retried), a 429
:class:`RateLimited`, a refused payload or address :class:`Rejected`.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

import httpx

from canonical.notifications import Message
from connectors.errors import RateLimited, Rejected, Unavailable


class NotifyPort(Protocol):
    """One way of telling people."""

    channel: str

    async def send(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


class SlackWebhookNotifier:
    """Posts to a Slack incoming webhook (``https://hooks.slack.com/services/...`` or the sandbox's)."""

    channel = "slack"

    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=15)

    async def send(self, message: Message) -> None:
        body = {"text": f"*{message.subject}*\n{message.text}\n<{message.link}|Open>",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                         "text": f"*{message.subject}*\n{message.text}"}},
                           {"type": "actions", "elements": [{"type": "button", "url": message.link,
                                                             "text": {"type": "plain_text", "text": "Open"}}]},
                           {"type": "context", "elements": [{"type": "plain_text",
                                                             "text": f"event {message.event_key}"}]}]}
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.TransportError as exc:
            raise Unavailable(f"Slack webhook unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "")
            raise RateLimited("Slack webhook rate limited", retry_after=float(retry) if retry.isdigit() else None)
        if response.status_code >= 500:
            raise Unavailable(f"Slack webhook answered {response.status_code}")
        if response.status_code >= 400:
            raise Rejected(f"Slack webhook refused the message: {response.text[:200]}")

    async def aclose(self) -> None:
        await self._client.aclose()


class SmtpNotifier:
    """Sends plain-text email through an SMTP server; the Message-ID is derived from the event key, so mail
    clients and the sandbox see a resend as the same message."""

    channel = "email"

    def __init__(self, *, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 15) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password, self._starttls, self._timeout = username, password, starttls, timeout

    def _send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = ", ".join(message.recipients)
        mail["Subject"] = message.subject
        domain = self._sender.rpartition("@")[2] or "revops.local"
        mail["Message-ID"] = make_msgid(idstring=message.event_key.replace(":", ".")[:60], domain=domain)
        mail["X-Revops-Event"] = message.event_key
        mail.set_content(f"{message.text}\n\n{message.link}\n")
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(mail)

    async def send(self, message: Message) -> None:
        if not message.recipients:
            return
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Rejected(f"SMTP refused every recipient ({len(exc.recipients)})") from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Unavailable(f"SMTP answered {exc.smtp_code}") from exc
            raise Rejected(f"SMTP answered {exc.smtp_code}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise Unavailable(f"SMTP server unreachable: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        return None
