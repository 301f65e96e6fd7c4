"""Waiting for an asynchronous outcome without fixed sleeps: poll until true or fail with the last value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], *, timeout: float = 30,
                     interval: float = 0.2, what: str = "condition") -> T:
    """Call ``probe`` until ``until(value)`` holds; fail after ``timeout`` seconds showing the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
