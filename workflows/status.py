"""What a long-running workflow shows people while it runs, in one place: :class:`WorkflowStatus`.

A workflow makes one in ``__init__`` and tells it what happens; it owns

- the stage (the workflow's own ``StrEnum``: ``Stage``, ``AmendmentStage``...), the exception kind
  (:class:`~canonical.exceptions.ExceptionKind`) and what the run waits for;
- the timeline (bounded) and the business keys (the ``BusinessKeys`` attribute, bounded if asked);
- the search attributes, batched by an :class:`~workflows.steps.AttributePublisher`: at most one upsert per
  workflow task and none that changes nothing (``Stage``, ``ExceptionKind``, ``BusinessKeys``, and whatever
  the workflow adds with :meth:`WorkflowStatus.set`: ``LegalEntity``, ``DealSize``);
- the run's current details (markdown in the Temporal UI): stage, exception, waiting for, the lines the
  workflow supplies (``details``), the recent timeline;
- how a business step runs (:meth:`WorkflowStatus.step`): the run's retry and timeout settings, and the
  attributes held while a local activity runs.

Lifecycle: :meth:`~WorkflowStatus.started_with` first thing in ``run`` (the attributes the run was started or
continued with count as published), :meth:`~WorkflowStatus.flush` before returning or continuing as new.
Called from workflow code only; deterministic, no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from canonical.exceptions import ExceptionKind
    from canonical.keys import step_idempotency_key
    from workflows.attributes import BUSINESS_KEYS, EXCEPTION_KIND, STAGE
    from workflows.models import TimelineEntry
    from workflows.steps import AttributePublisher, add_business_keys, run_step

StageT = TypeVar("StageT", bound=StrEnum)
SelfT = TypeVar("SelfT")
P = TypeVar("P")
R = TypeVar("R")

#: timeline entries the current details show
DETAILS_RECENT = 8


def idempotency_key(step: str, *, scope: str | None = None) -> str:
    """The idempotency key of one external write of this workflow: ``<workflowId>:<scope>:<step>``.

    ``scope`` defaults to the run chain (the first run's ID, so a new chain for the same business key gets new
    keys); a workflow whose writes belong to something longer-lived names it (an amendment: ``a<sequence>``).
    Stable across retries, replays and continue-as-new.
    """
    info = workflow.info()
    return step_idempotency_key(info.workflow_id, scope if scope is not None else info.first_execution_run_id[:8],
                                step)


class WorkflowStatus(Generic[StageT]):
    """Stage, exception kind, waiting-for, timeline, business keys and search attributes of one run.

    Args:
        stage: the stage the run starts in (its type is the workflow's stage enum).
        details: extra markdown lines for the current details (the deal, the contract...), called on publish.
        derive: for a run whose stage and exception kind follow from its state rather than from steps (the
            ledger: open items or settled, its book's most urgent problem by
            :func:`canonical.exceptions.most_urgent`): called before each timeline entry and publish, its answer
            replaces ``stage`` and ``exception``.
        timeline_kept: the newest entries kept (the query and the carried state never grow without bound).
        keys_kept: most business keys kept (``None``: no limit).
        keys_bytes: the most the ``BusinessKeys`` list may weigh as JSON (``None``: no limit).
        rolling_keys: which keys may roll out, oldest first, to make room for new ones (``None``: none; a
            key that does not fit is then not added).
    """

    def __init__(self, stage: StageT, *, details: Callable[[], list[str]] | None = None,
                 derive: Callable[[], tuple[StageT, ExceptionKind]] | None = None, timeline_kept: int = 50,
                 keys_kept: int | None = None, keys_bytes: int | None = None,
                 rolling_keys: Callable[[str], bool] | None = None) -> None:
        self.stage: StageT = stage
        self._exception = ExceptionKind.NONE
        self._shown_kind = ExceptionKind.NONE  # the kind ``exception_since`` belongs to
        self._since: datetime | None = None
        self._auth_refused = 0  # steps waiting on a vendor that refuses our credentials
        self.waiting_for = ""
        self.timeline: list[TimelineEntry] = []
        self.keys: list[str] = []
        self._details = details
        self._derive = derive
        self._timeline_kept = timeline_kept
        self._keys_kept = keys_kept
        self._keys_bytes = keys_bytes
        self._rolling_keys = rolling_keys
        self._attributes = AttributePublisher()
        self._retry_max_seconds: float | None = None
        self._timeout_seconds: float | None = None

    # -- the exception and since when it holds ------------------------------------------------------
    @property
    def exception(self) -> ExceptionKind:
        """The run's exception kind: ``vendor_auth_failed`` while a step waits on a vendor refusing our
        credentials, else the run's own (set by the workflow or derived from its state)."""
        return ExceptionKind.VENDOR_AUTH_FAILED if self._auth_refused else self._exception

    @exception.setter
    def exception(self, kind: ExceptionKind) -> None:
        self._exception = kind
        self._observe()

    @property
    def exception_since(self) -> datetime | None:
        """When the current exception kind began (``None`` when healthy): what its SLA is measured from, so
        that notes and re-posts in the meantime do not make it look young."""
        return self._since if self.exception else None

    def resume_exception(self, kind: ExceptionKind, since: datetime | None) -> None:
        """The exception a previous run (continued as new) had, and since when: it goes on, not anew."""
        self._exception = self._shown_kind = kind
        self._since = since if kind else None

    def _observe(self) -> None:
        kind = self.exception
        if kind != self._shown_kind:
            self._shown_kind, self._since = kind, (workflow.now() if kind else None)

    def _auth(self, summary: str, reason: str | None) -> None:
        """``run_step``'s report of a vendor refusing our credentials (``reason``) and of the key working again."""
        self._auth_refused += 1 if reason is not None else -1
        if reason is not None:
            self.note(f"{summary}: the vendor refuses our credentials ({reason[:200]}); retrying every few "
                      "minutes until the key is fixed")
        else:
            self.note(f"{summary}: credentials accepted again")

    # -- lifecycle --------------------------------------------------------------------------------
    def started_with(self, info: workflow.Info) -> None:
        """The search attributes the run started (or continued) with count as published; its keys are known."""
        started = info.typed_search_attributes
        self._attributes.started_with(started)
        self.keys = list(started.get(BUSINESS_KEYS) or [])

    def use(self, *, retry_max_seconds: float | None, timeout_seconds: float | None = None) -> None:
        """Steps from now on use the run's settings (read by its config activity): the longest retry interval
        and the start-to-close timeout (``None``: ``run_step``'s defaults)."""
        self._retry_max_seconds = retry_max_seconds
        self._timeout_seconds = timeout_seconds

    def flush(self) -> None:
        """Send what is gathered now (before returning or continuing as new)."""
        self._attributes.flush()

    # -- what happens -------------------------------------------------------------------------------
    def enter(self, stage: StageT, note: str, *, waiting_for: str) -> None:
        """The run moves to ``stage`` (or stays), now waiting for ``waiting_for``; noted and published."""
        self.stage = stage
        self.waiting_for = waiting_for
        self.note(note)

    def note(self, note: str) -> None:
        """A timeline entry; publishes the stage and exception kind (sent only if they changed)."""
        self.record(note)
        self.publish()

    def record(self, note: str) -> None:
        """A timeline entry only, nothing published (an update handler: the run's next step publishes)."""
        self._derived()
        self.timeline.append(TimelineEntry(at=workflow.now(), stage=self.stage.value, note=note))
        del self.timeline[:-self._timeline_kept]

    def add_keys(self, *keys: str) -> None:
        """``system:object:id`` keys this run is findable by (blank IDs skipped, known ones ignored)."""
        add_business_keys(self.keys, *keys, limit=self._keys_kept, publish=self._attributes.set,
                          rolling=self._rolling_keys, max_bytes=self._keys_bytes)

    def set(self, *updates: SearchAttributeUpdate[Any]) -> None:
        """Other search attributes (``LegalEntity``, ``DealSize``), sent with the next batch."""
        self._attributes.set(*updates)

    def publish(self) -> None:
        """Stage and exception kind to the search attributes, and the current details to the UI."""
        self._derived()
        self._attributes.set(STAGE.value_set(self.stage.value), EXCEPTION_KIND.value_set(self.exception.value))
        lines = [f"**Stage:** {self.stage.value}" + (f"  \n**Exception:** {self.exception.value}"
                                                      if self.exception.value else ""),
                 f"**Waiting for:** {self.waiting_for or 'nothing'}"]
        if self._details is not None:
            lines.extend(self._details())
        lines.append("**Recent:**\n" + "\n".join(f"- {t.at:%Y-%m-%d %H:%M:%S} {t.note}"
                                                  for t in self.timeline[-DETAILS_RECENT:]))
        workflow.set_current_details("\n\n".join(lines))

    def _derived(self) -> None:
        if self._derive is not None:
            self.stage, self._exception = self._derive()
        self._observe()

    # -- business steps -----------------------------------------------------------------------------
    async def step(self, activity_fn: Callable[[SelfT, P], Awaitable[R]], arg: P, summary: str, *,
                   local: bool = False) -> R:
        """Run one activity method with the run's retry and timeout settings (``run_step``).

        ``local=True`` runs it as a local activity, with the search attributes held until it ends (it runs
        inside the workflow task that scheduled it, so an upsert now would split that task's batch).
        """
        pending = run_step(activity_fn, arg, summary, local=local, retry_max_seconds=self._retry_max_seconds,
                           timeout_seconds=self._timeout_seconds, on_auth_failed=self._auth)
        if not local:
            return await pending
        with self._attributes.holding():
            return await pending
