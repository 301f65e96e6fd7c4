"""The notification channels against their emulators over real loopback (webhook receiver, aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canonical.authority import ApprovalAuthority, ApprovalFacts, Approver
from canonical.money import Money
from canonical.notifications import Message, Notice, NoticeKind
from connectors.errors import RateLimited, Rejected, Unavailable
from connectors.notify import Notifications, SendLog, SlackWebhookNotifier, SmtpNotifier
from sandbox.serve import free_port
from tests.helpers.notify import NotifyEmulators, notify_emulators


@pytest.fixture
def emulators() -> Iterator[NotifyEmulators]:
    with notify_emulators() as running:
        yield running


def message(key: str = "q2c-hubspot-1:abc:notice-approval-requested") -> Message:
    return Message(event_key=key, kind=NoticeKind.APPROVAL_REQUESTED, subject="Approval needed: Deal 1",
                   text="discount 25% exceeds 15%", link="http://inbox.example/inbox", recipients=["a@x.example"])


async def test_notify_slack_webhook_posts_and_maps_errors(emulators: NotifyEmulators) -> None:
    slack = SlackWebhookNotifier(emulators.webhook_url)
    try:
        await slack.send(message())
        [posted] = emulators.webhook.app.state.inbox.messages
        text = posted["body"]["text"]
        assert "Approval needed: Deal 1" in text and "http://inbox.example/inbox" in text
        assert emulators.slack_events() == {"q2c-hubspot-1:abc:notice-approval-requested": 1}

        async with httpx.AsyncClient() as http:
            (await http.post(f"{emulators.webhook.base_url}/_sandbox/faults", json={"status": 503})).raise_for_status()
        with pytest.raises(Unavailable):
            await slack.send(message())
        async with httpx.AsyncClient() as http:
            (await http.post(f"{emulators.webhook.base_url}/_sandbox/faults", json={"status": 429})).raise_for_status()
        with pytest.raises(RateLimited):
            await slack.send(message())
    finally:
        await slack.aclose()
    wrong = SlackWebhookNotifier(f"{emulators.webhook.base_url}/services/nope")
    with pytest.raises(Rejected):
        await wrong.send(message())
    await wrong.aclose()
    assert len(emulators.webhook.app.state.inbox.messages) == 1, "refused and failed posts are not kept"


def test_notify_webhook_emulator_is_as_strict_as_slack(emulators: NotifyEmulators) -> None:
    url = emulators.webhook_url
    assert httpx.post(url, content=b"not json").text == "invalid_payload"
    assert httpx.post(url, json=["a"]).status_code == 400
    refused = httpx.post(url, json={"text": "  "})
    assert (refused.status_code, refused.text) == (400, "no_text")
    assert httpx.post(url, json={"text": "hello"}).text == "ok"


async def test_notify_smtp_sends_with_a_message_id_from_the_event(emulators: NotifyEmulators) -> None:
    smtp = SmtpNotifier(host="127.0.0.1", port=emulators.smtp.port, sender="revops@revops.example")
    await smtp.send(message())
    [mail] = emulators.mail.snapshot()
    assert mail["to"] == ["a@x.example"] and mail["subject"] == "Approval needed: Deal 1"
    assert mail["event"] == "q2c-hubspot-1:abc:notice-approval-requested"
    assert "q2c-hubspot-1.abc.notice-approval-requested" in mail["message_id"]
    assert "http://inbox.example/inbox" in mail["text"]
    closed = SmtpNotifier(host="127.0.0.1", port=free_port(), sender="revops@revops.example", timeout=2)
    with pytest.raises(Unavailable):
        await closed.send(message())


async def test_notify_tells_approvers_with_authority_once_per_event(emulators: NotifyEmulators,
                                                                    tmp_path: Path) -> None:
    authority = ApprovalAuthority(approvers=[
        Approver(id="sam", name="Sam", role="sales_ops", max_discount_percent=2, email="sam@x.example"),
        Approver(id="dana", name="Dana", role="finance_manager", email="dana@x.example"),
        Approver(id="owner", name="Olga", role="cfo", email="olga@x.example", crm_owner_ids=["7"])])
    notifications = Notifications(
        channels=[SlackWebhookNotifier(emulators.webhook_url),
                  SmtpNotifier(host="127.0.0.1", port=emulators.smtp.port, sender="revops@revops.example"),
                  SlackWebhookNotifier(f"{emulators.webhook.base_url}/services/nope")],
        send_log=SendLog(tmp_path / "sent.sqlite"), authority=authority, operations=["ops@x.example"],
        inbox_url="http://inbox.example", ui_url="http://ui.example/namespaces/default")
    notifications.channels[2].channel = "slack-misconfigured"  # type: ignore[misc]
    notice = Notice(event_key="wf:run:notice-approval-requested", kind=NoticeKind.APPROVAL_REQUESTED,
                    workflow_id="wf", title="Approval needed", text="discount 5%",
                    facts=ApprovalFacts(amount=Money.of("10", "USD"), discount_percent=5, owner_id="7"))
    try:
        assert await notifications.tell(notice) == ["slack", "email"]
        assert await notifications.tell(notice) == [], "sent once per channel, a refusal recorded too"
    finally:
        await notifications.aclose()
    [mail] = emulators.mail.snapshot()
    assert mail["to"] == ["dana@x.example"], "not over their limit, not the deal's owner"
    assert emulators.slack_events() == {"wf:run:notice-approval-requested": 1}
