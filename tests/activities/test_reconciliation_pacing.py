"""The reconciliation reads' pacer: requests spaced under a rate, a 429 waited out and retried, counted."""

from __future__ import annotations

from activities.reconciliation import PacedReads
from connectors.errors import RateLimited


async def test_pacer_waits_out_a_429_and_counts_requests_and_rate_limits() -> None:
    answers: list[object] = [RateLimited("slow down", vendor="xero", retry_after=0.01), "page 1"]

    async def fetch() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    pacer = PacedReads(per_second=1000)
    assert await pacer.call(fetch) == "page 1"
    assert (pacer.requests, pacer.rate_limited) == (2, 1) and answers == []


async def test_pacer_gives_up_after_repeated_429s_with_the_vendors_error() -> None:
    calls = 0

    async def always_limited() -> str:
        nonlocal calls
        calls += 1
        raise RateLimited("still slow", vendor="stripe", retry_after=0.0)

    pacer = PacedReads(per_second=0)
    try:
        await pacer.call(always_limited)
    except RateLimited as exc:
        assert exc.message == "still slow"
    else:
        raise AssertionError("a vendor that never lets up must fail the read (the activity retries later)")
    assert calls == 21 and pacer.rate_limited == 20
