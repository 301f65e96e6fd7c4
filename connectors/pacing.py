"""Client-side pacing under a vendor's rate limit, shared by every caller that sends many requests (the
company backfill, the deal poll): 429s stay the exception, not the way requests are spaced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """Requests spaced ``1/rate`` seconds apart. A slot is reserved before sleeping, so concurrent callers
    queue behind each other instead of all waking at once. Clock and sleep are injectable for tests."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    async def take(self) -> None:
        """Wait for this caller's slot."""
        now = self._clock()
        slot = max(self._next, now)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
