"""What every workflow here shares: how one business step runs as an activity (summary, timeout, a retry
policy that never gives up on an outage) and how a failure reads to a person. The finance approval gate is
its own component (:mod:`workflows.approval_gate`).

Called from workflow code only; deterministic, no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.retrying import AUTH_RETRY_DELAY
    from connectors.errors import AuthFailed
    from workflows.attributes import BUSINESS_KEYS

STEP_TIMEOUT = timedelta(minutes=2)
#: how a step that failed for good reaches the workflow: a regular activity's failure as ``ActivityError``, a
#: local activity's as the ``ApplicationError`` itself (the SDK does not wrap it)
STEP_FAILED = (ActivityError, ApplicationError)
SelfT = TypeVar("SelfT")
P = TypeVar("P")
R = TypeVar("R")
RETRY_MAX = timedelta(minutes=5)


def step_retry(max_seconds: float | None = None, *, maximum_attempts: int = 0) -> RetryPolicy:
    """Back off from 1 s to ``max_seconds`` (5 minutes by default); no attempt limit unless given."""
    maximum = timedelta(seconds=max_seconds) if max_seconds is not None else RETRY_MAX
    return RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=maximum,
                       maximum_attempts=maximum_attempts)


async def run_step(activity_fn: Callable[[SelfT, P], Awaitable[R]], arg: P, summary: str, *, local: bool = False,
                   retry_max_seconds: float | None = None, timeout_seconds: float | None = None,
                   maximum_attempts: int = 0, on_auth_failed: Callable[[str, str | None], None] | None = None) -> R:
    """Run one activity method with its UI summary; transient failures retry durably. Typed by the method:
    ``arg`` must be its parameter and the result is its return type.

    The short workflows (reconciliation) call it directly; the long-running ones through
    :meth:`workflows.status.WorkflowStatus.step`, which adds the run's settings and holds search attributes.

    ``local=True`` runs it as a local activity: for a short read or an idempotent property write that is safe
    to repeat, it costs one marker event in the history instead of three activity events and a workflow task.

    A vendor refusing our credentials (``AuthFailed``) does not fail the step: it runs again every
    ``AUTH_RETRY_DELAY`` until the key works, and ``on_auth_failed(summary, reason)`` is told when that starts
    (``reason``) and ends (``None``), so the run can show it.
    """
    timeout = timedelta(seconds=timeout_seconds) if timeout_seconds is not None else STEP_TIMEOUT
    retry = step_retry(retry_max_seconds, maximum_attempts=maximum_attempts)
    refused = False
    while True:
        try:
            if local:
                result = await workflow.execute_local_activity_method(
                    activity_fn, arg, start_to_close_timeout=timeout, summary=summary[:200], retry_policy=retry)
            else:
                result = await workflow.execute_activity_method(
                    activity_fn, arg, start_to_close_timeout=timeout, summary=summary[:200], retry_policy=retry)
        except STEP_FAILED as err:
            if failure_type(err) != AuthFailed.error_type:
                raise
            if not refused and on_auth_failed is not None:
                on_auth_failed(summary, failure_reason(err))
            refused = True
            await workflow.sleep(AUTH_RETRY_DELAY)
            continue
        if refused and on_auth_failed is not None:
            on_auth_failed(summary, None)
        return result


def add_business_keys(known: list[str], *keys: str, publish: Callable[..., None], limit: int | None = None,
                      rolling: Callable[[str], bool] | None = None, max_bytes: int | None = None) -> None:
    """Add ``system:object:id`` keys to ``known`` and the ``BusinessKeys`` search attribute (only when new).

    Blank keys and keys with an empty ID (``erp:contact:``) are skipped. ``limit`` caps the count and
    ``max_bytes`` the list's JSON size (one search attribute value has a size limit on the server). Without
    ``rolling`` the new keys that do not fit are dropped; with it, the oldest keys it says may roll out (a
    ledger's documents) make room first, so the newest documents stay findable and the identity keys stay.
    ``publish`` takes the update (an :class:`AttributePublisher`'s ``set``, which gathers it).
    """
    new = [k for k in dict.fromkeys(keys) if k and not k.endswith(":") and k not in known]
    if not new:
        return
    if rolling is None:
        if limit is not None:
            new = new[:max(0, limit - len(known))]
        kept = [*known, *new]
    else:
        kept = [*known, *new]
        while _over(kept, limit, max_bytes):
            oldest = next((k for k in kept if rolling(k)), None)
            if oldest is None:
                break
            kept.remove(oldest)
    while new and _over(kept, limit, max_bytes):  # what could not make room is not added
        kept.remove(new.pop())
    if kept != known:
        known[:] = kept
        publish(BUSINESS_KEYS.value_set(list(known)))


def _over(keys: list[str], limit: int | None, max_bytes: int | None) -> bool:
    """More keys than ``limit``, or a JSON list longer than ``max_bytes`` (2 bytes of brackets, quotes and a
    comma per key: what the server measures, for the ASCII keys are)."""
    if limit is not None and len(keys) > limit:
        return True
    return max_bytes is not None and 2 + sum(len(k.encode()) + 3 for k in keys) - (1 if keys else 0) > max_bytes


class AttributePublisher:
    """Search-attribute updates gathered into one upsert per workflow activation.

    Every upsert is a history event and a visibility write on the server; a run that moves a stage, learns
    an ID and records an amount between two activities would otherwise upsert three times. ``set`` keeps the
    latest value per attribute and schedules a flush task on the workflow's event loop: it runs once the
    workflow code blocks (on an activity, a timer, a condition) and nothing else is ready, still inside the same
    activation, so the UI is never behind by more than the task in progress, and several coroutines moving on
    in one activation (the ledger's lanes) still upsert once. Values equal to the last ones sent are dropped.
    Call :meth:`flush` before returning or continuing as new. A local activity runs inside the workflow task
    that scheduled it, so updates are held while one runs (:meth:`holding`) and go out once, when the code
    blocks on something that ends the task.
    """

    def __init__(self) -> None:
        self._pending: dict[str, SearchAttributeUpdate[Any]] = {}
        self._sent: dict[str, Any] = {}
        self._scheduled = False
        self._held = 0

    def started_with(self, attributes: TypedSearchAttributes) -> None:
        """The values the run was started with count as sent (no upsert repeats them)."""
        self._sent.update({pair.key.name: pair.value for pair in attributes})

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the flush while the block runs (a local activity); schedule it again afterwards."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if self._pending and not self._scheduled:
                self._scheduled = True
                asyncio.ensure_future(self._flush_when_blocked())

    def set(self, *updates: SearchAttributeUpdate[Any]) -> None:
        for update in updates:
            self._pending[update.key.name] = update
        if not self._scheduled:
            self._scheduled = True
            asyncio.ensure_future(self._flush_when_blocked())

    async def _flush_when_blocked(self) -> None:
        # the event loop checks conditions only when no callback is ready: every coroutine has had its turn
        await workflow.wait_condition(lambda: True)
        self._scheduled = False
        if not self._held:
            self.flush()

    def flush(self) -> None:
        changed = [u for name, u in self._pending.items() if name not in self._sent or self._sent[name] != u.value]
        self._pending.clear()
        if changed:
            workflow.upsert_search_attributes(changed)
            self._sent.update({u.key.name: u.value for u in changed})


def application_error(err: BaseException) -> ApplicationError | None:
    """The innermost ``ApplicationError`` behind an activity or child failure."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    return cause if isinstance(cause, ApplicationError) else None


def failure_type(err: BaseException) -> str:
    found = application_error(err)
    return (found.type or "") if found else ""


def failure_reason(err: BaseException) -> str:
    """The innermost application error's type and message, for people."""
    found = application_error(err)
    if found is None:
        return str(err)
    return f"{found.type}: {found.message}" if found.type else found.message
