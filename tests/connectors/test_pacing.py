"""The shared pacer, on an injected clock: no wall-clock bounds."""

from __future__ import annotations

import asyncio

import pytest

from connectors.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.woke: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.woke.append(self.now)


async def test_pacer_spaces_calls_one_interval_apart() -> None:
    clock = FakeClock()
    pacer = Pacer(20, clock=clock, sleep=clock.sleep)
    for _ in range(6):
        await pacer.take()
    assert clock.woke == pytest.approx([100.05, 100.10, 100.15, 100.20, 100.25])


async def test_pacer_reserves_slots_for_concurrent_callers() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(round(seconds, 6))

    pacer = Pacer(5, clock=clock, sleep=record)
    await asyncio.gather(*(pacer.take() for _ in range(4)))
    assert sorted(slept) == [0.2, 0.4, 0.6], "each concurrent caller waits for its own slot"


def test_pacer_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
