"""Telling people about an event no write-back records (e.g. the ERP refusing an invoice in the ledger)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.models import Ack
from activities.retrying import business_step
from canonical.notifications import Notice
from connectors.notify import Notifications


class NotifyActivities:
    """The ``notify_people`` activity over the worker's notification channels (none: nothing is sent)."""

    def __init__(self, *, notifications: Notifications | None) -> None:
        self.notifications = notifications

    @activity.defn(name="notify_people")
    @business_step
    async def notify_people(self, notice: Notice) -> Ack:
        """Each channel once per ``notice.event_key``, across retries and worker restarts."""
        told = await self.notifications.tell(notice) if self.notifications is not None else []
        return Ack(detail=", ".join(told) or "nothing new to send")

    def all(self) -> list[Callable[..., Any]]:
        return [self.notify_people]
