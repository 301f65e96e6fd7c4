"""Waiting for an asynchronous outcome without fixed sleeps: poll until true or fail with the last value."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T] | T], until: Callable[[T], Any] = bool, *,
                     timeout: float = 30, interval: float = 0.2, what: str = "condition") -> T:
    """Call ``probe`` (sync or async) until ``until(value)`` holds (by default: the value is truthy); fail after
    ``timeout`` seconds showing the last value. Every read of another system's state goes through this."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if until(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
