"""Emulators of the notification channels: a Slack-compatible incoming-webhook receiver and an SMTP server
(``aiosmtpd``). Both keep every message they accept, duplicates included (neither Slack nor a mail server
drops a resent message), so tests count what people would see.

Webhook: ``POST /services/{team}/{bot}/{secret}`` with JSON ``{"text": ..., "blocks": [...]}``; answers
``ok`` like Slack, 400 ``invalid_payload`` for a body that is not a JSON object, 400 ``no_text`` without
text or blocks, 404 ``no_service`` for another path. Control: ``GET /_sandbox/messages``,
``POST /_sandbox/faults {"status": 503, "count": 2}`` (the next requests fail without being kept).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


@dataclass
class WebhookInbox:
    """What the receiver accepted, and the faults it will answer next."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_webhook_app() -> FastAPI:
    inbox = WebhookInbox()
    app = FastAPI(title="Sandbox incoming webhooks", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.inbox = inbox

    @app.post("/services/{team}/{bot}/{secret}")
    async def post(team: str, bot: str, secret: str, request: Request) -> Response:
        with inbox.lock:
            if inbox.fail_next:
                return PlainTextResponse("service_unavailable", status_code=inbox.fail_next.pop(0))
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        if not (isinstance(body.get("text"), str) and body["text"].strip()) and not body.get("blocks"):
            return PlainTextResponse("no_text", status_code=400)
        with inbox.lock:
            inbox.messages.append({"path": f"/services/{team}/{bot}/{secret}", "body": body,
                                   "received_at": datetime.now(UTC).isoformat()})
        return PlainTextResponse("ok")

    @app.get("/_sandbox/messages")
    async def messages() -> JSONResponse:
        with inbox.lock:
            return JSONResponse(list(inbox.messages))

    @app.post("/_sandbox/faults")
    async def faults(request: Request) -> dict[str, int]:
        spec = await request.json()
        with inbox.lock:
            inbox.fail_next.extend([int(spec.get("status", 503))] * int(spec.get("count", 1)))
        return {"pending_faults": len(inbox.fail_next)}

    @app.post("/{path:path}")
    async def other(path: str) -> Response:
        return PlainTextResponse("no_service", status_code=404)

    return app


class MailSink:
    """The aiosmtpd handler: keeps every accepted message (parsed)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        parsed = message_from_bytes(envelope.content, policy=default_policy)
        body = parsed.get_body(preferencelist=("plain",))
        with self._lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "subject": str(parsed["Subject"] or ""), "message_id": str(parsed["Message-ID"]),
                                  "event": str(parsed["X-Revops-Event"] or "").strip(),
                                  "text": body.get_content() if body is not None else ""})
        return "250 Message accepted for delivery"

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)


def start_smtp(host: str, port: int) -> tuple[Controller, MailSink]:
    """An SMTP server in its own thread; stop it with ``controller.stop()``."""
    sink = MailSink()
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    return controller, sink
