"""``/v1/events``: every event the emulator emitted, as Stripe keeps them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sandbox.stripe.core import Emulator


class Events:
    """The event routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.get("/v1/events")(self.list_events)
        router.get("/v1/events/{event_id}")(self.get_event)

    async def list_events(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "event", "/v1/events", {"type": "type"})

    async def get_event(self, event_id: str) -> dict[str, Any]:
        return self.emu.get("event", event_id)
