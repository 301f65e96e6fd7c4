"""``/v1/events``: every event the emulator emitted, as Stripe keeps them."""

from __future__ import annotations

import fnmatch
from typing import Any

from fastapi import APIRouter, Request

from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import bad


def _names(types: Any) -> list[str]:
    """``types``: an array of at most 20 event names, or Stripe's 400."""
    names = list(types.values()) if isinstance(types, dict) else types
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad("Invalid array", "types")
    if len(names) > 20:
        raise bad("Invalid array: types must have at most 20 elements", "types")
    return names


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
        """Newest first; ``type`` (one name, ``*`` as a wildcard), ``types`` (up to 20 names) and ``created``
        filter as Stripe's do."""
        def matches(event: dict[str, Any], q: dict[str, Any]) -> bool:
            pattern = q.get("type")
            if isinstance(pattern, str) and not fnmatch.fnmatchcase(event["type"], pattern):
                return False
            types = q.get("types")
            return types is None or event["type"] in _names(types)

        return self.emu.listing(request, "event", "/v1/events", {"type": "", "types": ""}, matches)

    async def get_event(self, event_id: str) -> dict[str, Any]:
        return self.emu.get("event", event_id)
