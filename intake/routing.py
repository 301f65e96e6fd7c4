"""From a canonical event to a Temporal action, and the one dedupe path every event takes.

:class:`EventRouter` decides, per event kind:

- ``DealStageReached`` -> start quote-to-cash (``USE_EXISTING``: the workflow ID is the dedupe key);
- ``DealChanged`` -> signal ``deal_corrected`` when the deal's run is waiting for data, else ignored;
- ``ContractExecuted`` -> find the deal through the CLM record (``revopsDealId``) and signal
  ``contract_executed`` on its run, else ignored;
- ``AmendmentExecuted`` -> signal-with-start the contract's amendment workflow;
- Stripe invoice and credit-note events -> signal-with-start the customer's ledger workflow;
- ``ErpRecordChanged`` -> ignored (counted);
- ``OwnWriteEcho`` (the CRM reporting what our write-back set) -> recorded as ``echo``, nothing routed.

:class:`EventIntake` wraps it with the event ledger: claim the event's dedupe key (``canonical.events.dedupe_key``:
the vendor event ID, or an amendment's record and sequence; race-safe), route,
settle, record. Webhooks, the CRM, billing and amendment polls and ``starter.py replay-event`` all go through it.
If Temporal (or the CLM, for a lookup) cannot take the event now, :class:`RoutingUnavailable` is
raised and the event stays un-acknowledged (``failed``) so the vendor's redelivery routes it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from canonical import (
    AmendmentExecuted,
    ContractExecuted,
    CreditNoteIssued,
    Deal,
    DealChanged,
    DealStageReached,
    DomainEvent,
    ErpRecordChanged,
    EventEnvelope,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceVoided,
)
from canonical.events import OwnWriteEcho, dedupe_key
from connectors.errors import ConnectorError, RateLimited, Unavailable
from connectors.ports import ClmPort, CrmPort
from observability.tracing import annotate
from runtime.attributes import STAGE
from runtime.launch import launch_amendment, launch_billing_event, launch_quote_to_cash, quote_to_cash_id
from settings import Settings
from stores.events import (
    Delivery,
    EventLedger,
    EventState,
    Outcome,
    SignatureCheck,
    claim_event,
    events_to_retry,
    find_event,
    get_delivery,
    give_up_event,
    list_deliveries,
    record_delivery,
    settle_event,
    utcnow,
)
from workflows.models import (
    ContractExecutedSignal,
    DealCorrection,
    Stage,
)

log = logging.getLogger("revops.ingress")

#: gRPC statuses that mean "not now": the vendor should redeliver
_TRANSIENT = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
              RPCStatusCode.ABORTED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL}

#: a deal change matters to its run only before or while it waits for data
_CORRECTABLE = {None, "", Stage.LOADING.value, Stage.DATA_EXCEPTION.value}


class RoutingUnavailable(Exception):
    """Temporal (or the CLM lookup) cannot take the event now: answer 503, the vendor redelivers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Routed:
    """What routing did: the outcome, the workflow it concerns, and why (for ignored ones)."""

    outcome: Outcome
    workflow_id: str | None = None
    reason: str = ""
    event_id: str | None = None
    delivery_id: int | None = None


class ClientProvider:
    """The Temporal client, connected lazily and re-connected after a failure.

    ``connect`` is e.g. :func:`runtime.connect.connect`; tests point it at a server they stop
    and start. :meth:`fixed` wraps a client someone else owns.
    """

    def __init__(self, connect: Callable[[], Awaitable[Client]], *, timeout: float = 5.0) -> None:
        self._connect = connect
        self._timeout = timeout
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._fixed = False

    @classmethod
    def fixed(cls, client: Client) -> ClientProvider:
        provider = cls(_never_connect)
        provider._client, provider._fixed = client, True
        return provider

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(self._connect(), self._timeout)
                except (TimeoutError, RuntimeError, RPCError, OSError) as exc:
                    raise RoutingUnavailable(f"cannot connect to Temporal: {exc or type(exc).__name__}") from exc
            return self._client

    def forget(self) -> None:
        """Drop the connection so the next call connects afresh (no-op for a fixed client)."""
        if not self._fixed:
            self._client = None


async def _never_connect() -> Client:
    raise RuntimeError("fixed client provider has no way to connect")


def _billing_customer(event: DomainEvent) -> str | None:
    if isinstance(event, CreditNoteIssued):
        return event.customer_id
    if isinstance(event, InvoiceFinalized | InvoicePaid | InvoicePaymentFailed | InvoiceVoided):
        return event.invoice.customer_id
    return None


class EventRouter:
    """Turns one canonical event into one Temporal start or signal (see the module docstring)."""

    def __init__(self, *, settings: Settings, clients: ClientProvider, clm: ClmPort | None = None,
                 crm: CrmPort | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self.clm = clm
        self.crm = crm

    async def _deal_for_summary(self, deal_id: str) -> Deal | None:
        """The deal, so the run's UI summary can name company, amount and entity; best effort, never blocking."""
        if self.crm is None:
            return None
        try:
            async with asyncio.timeout(2):
                return await self.crm.get_deal(deal_id)
        except (ConnectorError, TimeoutError) as exc:
            log.info("deal not read for the run summary; the run reads it itself",
                     extra={"deal_id": deal_id, "error": type(exc).__name__})
            return None

    async def route(self, event: DomainEvent, *, trigger: str = "webhook") -> Routed:
        """Hand the event over to Temporal; raise :class:`RoutingUnavailable` when that cannot be done now."""
        try:
            async with asyncio.timeout(self.settings.ingress_temporal_timeout_seconds):
                routed = await self._route(event, trigger)
        except TimeoutError as exc:
            self.clients.forget()
            raise RoutingUnavailable(
                f"Temporal did not answer within {self.settings.ingress_temporal_timeout_seconds:g}s") from exc
        except RPCError as exc:
            if exc.status in _TRANSIENT:
                self.clients.forget()
                raise RoutingUnavailable(f"Temporal unavailable: {exc.message}") from exc
            raise
        except (Unavailable, RateLimited) as exc:
            raise RoutingUnavailable(f"CLM lookup failed: {exc}") from exc
        return routed

    async def _route(self, event: DomainEvent, trigger: str) -> Routed:
        if isinstance(event, OwnWriteEcho):
            return Routed(Outcome.ECHO, quote_to_cash_id(self.settings, event.deal_id),
                          f"our own write-back ({', '.join(event.properties)}); nothing to do")
        if isinstance(event, DealStageReached):
            return await self._start_deal(event, trigger)
        if isinstance(event, DealChanged):
            return await self._deal_changed(event)
        if isinstance(event, ContractExecuted):
            return await self._contract_executed(event)
        if isinstance(event, AmendmentExecuted):
            return await self._amendment(event)
        customer = _billing_customer(event)
        if customer is not None:
            return await self._billing_event(event, customer)
        if isinstance(event, ErpRecordChanged):
            return Routed(Outcome.IGNORED, reason=f"no flow acts on ERP {event.category} changes")
        return Routed(Outcome.IGNORED, reason=f"no flow acts on {event.kind}")

    async def _start_deal(self, event: DealStageReached, trigger: str) -> Routed:
        client = await self.clients.get()
        if trigger == "poll":
            # the poll is the net for lost webhooks: any run for the deal, even a closed one, means none was lost
            try:
                workflow_id = quote_to_cash_id(self.settings, event.deal_id)
                description = await client.get_workflow_handle(workflow_id).describe()
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
            else:
                status = description.status.name.lower() if description.status else "unknown"
                return Routed(Outcome.DUPLICATE, description.id, f"the deal already has a run ({status})")
        try:
            launched = await launch_quote_to_cash(client, self.settings, event.deal_id, trigger=trigger,
                                                  source_event_id=event.source_event_id,
                                                  deal=await self._deal_for_summary(event.deal_id))
        except WorkflowAlreadyStartedError:
            # the deal's run has closed and its outcome is final: only an operator reopens it (--reopen)
            return Routed(Outcome.DUPLICATE, quote_to_cash_id(self.settings, event.deal_id),
                          "the deal's quote-to-cash run is closed; its outcome stands")
        if launched.started:
            return Routed(Outcome.STARTED, launched.handle.id, f"deal reached {event.stage}")
        return Routed(Outcome.DUPLICATE, launched.handle.id, "quote-to-cash is already running for the deal")

    async def _deal_changed(self, event: DealChanged) -> Routed:
        client = await self.clients.get()
        workflow_id = quote_to_cash_id(self.settings, event.deal_id)
        handle = client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return Routed(Outcome.IGNORED, None, "no quote-to-cash run for the deal")
            raise
        if description.status is not WorkflowExecutionStatus.RUNNING:
            return Routed(Outcome.IGNORED, workflow_id, "the deal's quote-to-cash run is closed")
        stage = description.typed_search_attributes.get(STAGE)
        if stage not in _CORRECTABLE:
            return Routed(Outcome.IGNORED, workflow_id, f"the run is not waiting for data (stage {stage})")
        correction = DealCorrection(source_event_id=event.source_event_id, changed_properties=sorted(event.properties))
        return await self._signal(handle, "deal_corrected", correction, "deal corrected")

    async def _contract_executed(self, event: ContractExecuted) -> Routed:
        if self.clm is None:
            return Routed(Outcome.IGNORED, reason="no CLM configured to find the contract's deal")
        try:
            contract = await self.clm.get_contract(event.clm_workflow_id)
        except (Unavailable, RateLimited):
            raise
        except ConnectorError as exc:
            return Routed(Outcome.IGNORED, reason=f"contract {event.clm_workflow_id} not readable: {exc}")
        if not contract.deal_crm_id:
            return Routed(Outcome.IGNORED, reason=f"contract {event.clm_workflow_id} names no deal")
        client = await self.clients.get()
        handle = client.get_workflow_handle(quote_to_cash_id(self.settings, contract.deal_crm_id))
        signal = ContractExecutedSignal(clm_workflow_id=event.clm_workflow_id,
                                        clm_record_id=event.clm_record_id or contract.clm_record_id,
                                        source_event_id=event.source_event_id)
        return await self._signal(handle, "contract_executed", signal, "contract executed")

    async def _signal(self, handle: WorkflowHandle[Any, Any], name: str, arg: Any, note: str) -> Routed:
        try:
            await handle.signal(name, arg)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return Routed(Outcome.IGNORED, handle.id, "no running workflow to signal")
            raise
        return Routed(Outcome.SIGNALLED, handle.id, note)

    async def _amendment(self, event: AmendmentExecuted) -> Routed:
        client = await self.clients.get()
        launched = await launch_amendment(client, self.settings, event.clm_record_id, sequence=event.sequence,
                                          clm_amendment_id=event.clm_amendment_id,
                                          source_event_id=event.source_event_id, executed_at=event.occurred_at)
        outcome = Outcome.STARTED if launched.started else Outcome.SIGNALLED
        return Routed(outcome, launched.handle.id, f"amendment {event.sequence} executed")

    async def _billing_event(self, event: DomainEvent, customer_id: str) -> Routed:
        client = await self.clients.get()
        launched = await launch_billing_event(client, self.settings, customer_id, event)
        outcome = Outcome.STARTED if launched.started else Outcome.SIGNALLED
        return Routed(outcome, launched.handle.id, event.kind)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class Received:
    """What the ledger keeps of the delivery an event came in."""

    vendor: str
    request_id: str
    signature: SignatureCheck
    headers: Mapping[str, str]
    body: str = ""  # kept (encrypted) only once the signature was verified
    body_bytes: int = 0
    body_sha256: str = ""
    replay_of: int | None = None


@dataclass(frozen=True)
class SweepResult:
    """What one sweep of the ledger did: events routed again, still failing, given up."""

    routed: int = 0
    failed: int = 0
    given_up: int = 0


class EventIntake:
    """The one path for every event: dedupe by the event's dedupe key, route, record."""

    def __init__(self, *, router: EventRouter, ledger: EventLedger,
                 on_recorded: Callable[[str, str], None] | None = None) -> None:
        self.router = router
        self.ledger = ledger
        self.on_recorded = on_recorded  # (vendor, outcome) of every recorded delivery: the ingress's metrics
        self._locks = KeyedLocks()

    async def accept(self, event: DomainEvent, received: Received, *, trigger: str = "webhook",
                     force: bool = False) -> Routed:
        """Route the event unless an earlier delivery of it finished (then: ``duplicate``).

        ``force`` routes even a finished event again (replay). Raises :class:`RoutingUnavailable`
        after recording the delivery as ``failed``.
        """
        vendor, event_id = received.vendor, dedupe_key(event)
        sealed = self.ledger.seal(EventEnvelope(event=event).model_dump_json())
        # one process serialises deliveries of the same event; the ledger's claim covers the other replicas
        async with self._locks.hold((vendor, event_id)):
            stranded_before = utcnow() - timedelta(seconds=self.router.settings.ledger_stranded_after_seconds)
            claim = await self.ledger.run(claim_event, vendor=vendor, vendor_event_id=event_id, event=sealed,
                                          stranded_before=stranded_before)
            if not claim.route and not force:
                why = "being routed by another delivery" if claim.in_flight else f"already handled ({claim.outcome})"
                routed = Routed(Outcome.DUPLICATE, claim.workflow_id, why)
                row = await self._record(event, received, routed.outcome, routed.workflow_id, routed.reason, 200,
                                         sealed=sealed)
            else:
                try:
                    routed = await self.router.route(event, trigger=trigger)
                except RoutingUnavailable as exc:
                    await self._fail(event, received, exc.reason, 503)
                    raise
                except Exception as exc:
                    await self._fail(event, received, f"{type(exc).__name__}: {exc}", 500)
                    raise
                # settled and recorded in one transaction
                row = self._delivery(event, received, routed.outcome, routed.workflow_id, routed.reason, 200,
                                     sealed=sealed)
                await self.ledger.run(settle_event, vendor=vendor, vendor_event_id=event_id,
                                      outcome=routed.outcome, workflow_id=routed.workflow_id, delivery=row)
        annotate(vendor=vendor, vendor_event_id=event_id, event_kind=event.kind, workflow_id=routed.workflow_id,
                 outcome=routed.outcome.value)
        log.info("event routed", extra={"vendor": vendor, "kind": event.kind, "event_id": event_id,
                                        "outcome": routed.outcome.value, "workflow_id": routed.workflow_id or ""})
        return Routed(routed.outcome, routed.workflow_id, routed.reason, event_id, row.id)

    async def handled(self, event: DomainEvent, *, vendor: str | None = None) -> bool:
        """Whether an earlier delivery of the event (webhook, poll, replay) finished with it: a poll re-reading
        its overlap skips it without adding a row to the ledger."""
        kept = await self.ledger.run(find_event, vendor_event_id=dedupe_key(event),
                                     vendor=vendor or event.source_system)
        return kept is not None and kept.state in (EventState.DONE.value, EventState.GIVEN_UP.value)

    async def accept_polled(self, event: DomainEvent, *, request_id: str) -> str:
        """An event a poll found: the same dedupe path as its webhook, recorded as a poll. Returns the outcome.

        Shielded like the ingress's deliveries: a poll activity cancelled (its heartbeat timing out, a worker
        shutting down) must not stop an event between being claimed in the ledger and being settled there."""
        received = Received(vendor=event.source_system, request_id=request_id, signature=SignatureCheck.POLL,
                            headers={}, body=event.model_dump_json())
        routed = await asyncio.shield(asyncio.ensure_future(self.accept(event, received, trigger="poll")))
        return routed.outcome.value

    async def _fail(self, event: DomainEvent, received: Received, reason: str, status: int) -> None:
        s = self.router.settings
        await self.ledger.run(settle_event, vendor=received.vendor, vendor_event_id=dedupe_key(event),
                              outcome=Outcome.FAILED, workflow_id=None, error=reason,
                              retry_base_seconds=s.ledger_retry_base_seconds,
                              retry_max_seconds=s.ledger_retry_max_seconds,
                              delivery=self._delivery(event, received, Outcome.FAILED, None, reason, status))
        log.warning("event not handed over", extra={"vendor": received.vendor, "kind": event.kind,
                                                    "event_id": event.source_event_id, "reason": reason})

    def _delivery(self, event: DomainEvent | None, received: Received, outcome: Outcome, workflow_id: str | None,
                  reason: str, status: int, *, sealed: str | None = None) -> Delivery:
        """The ledger row of a delivery (``sealed``: the event already sealed for its dedupe record)."""
        if self.on_recorded is not None:
            self.on_recorded(received.vendor, outcome.value)
        if event is not None and sealed is None:
            sealed = self.ledger.seal(EventEnvelope(event=event).model_dump_json())
        return Delivery(
            request_id=received.request_id, vendor=received.vendor,
            vendor_event_id=event.source_event_id if event else None, event_kind=event.kind if event else None,
            signature=received.signature.value, outcome=outcome.value, workflow_id=workflow_id, reason=reason,
            status_code=status, headers=json.dumps(dict(received.headers)), body=self.ledger.seal(received.body),
            body_bytes=received.body_bytes, body_sha256=received.body_sha256, event=sealed,
            replay_of=received.replay_of)

    async def _record(self, event: DomainEvent | None, received: Received, outcome: Outcome,
                      workflow_id: str | None, reason: str, status: int, *, sealed: str | None = None) -> Delivery:
        return await self.ledger.run(record_delivery, delivery=self._delivery(
            event, received, outcome, workflow_id, reason, status, sealed=sealed))

    async def record_refusal(self, received: Received, *, outcome: Outcome, reason: str, status: int) -> Delivery:
        """Record a delivery that routed nothing (refused, or carrying no event)."""
        return await self._record(None, received, outcome, None, reason, status)

    async def replay(self, reference: str) -> Routed:
        """Route a recorded event again: ``reference`` is a delivery ID or a vendor event ID."""
        row: Delivery | None
        if reference.isdigit():
            row = await self.ledger.run(get_delivery, delivery_id=int(reference))
        else:
            rows = await self.ledger.run(list_deliveries, event_id=reference, limit=50)
            # the latest row that carries the event (a given-up or refused row does not)
            row = next((r for r in rows if r.event is not None), rows[0] if rows else None)
        if row is not None and row.event is None and not reference.isdigit():
            # no delivery kept it (e.g. stranded by a crash, then given up): the dedupe record did
            kept = await self.ledger.run(find_event, vendor_event_id=reference)
            if kept is not None and kept.event is not None:
                row = Delivery(request_id="", vendor=kept.vendor, vendor_event_id=reference, signature=row.signature,
                               outcome=row.outcome, status_code=0, event=kept.event)
        if row is None:
            raise LookupError(f"no recorded delivery {reference!r}")
        if row.event is None:
            raise LookupError(f"delivery {row.id} carries no event to replay ({row.outcome}: {row.reason})")
        event = EventEnvelope.model_validate_json(self.ledger.open(row.event)).event
        received = Received(vendor=row.vendor, request_id=uuid4().hex, signature=SignatureCheck.REPLAY,
                            headers=json.loads(row.headers or "{}"), body=self.ledger.open(row.body),
                            body_bytes=row.body_bytes, body_sha256=row.body_sha256, replay_of=row.id)
        trigger = "poll" if row.signature == SignatureCheck.POLL.value else "replay"
        return await self.accept(event, received, trigger=trigger, force=True)

    async def sweep(self, *, now: datetime, limit: int = 100) -> SweepResult:
        """Route again the events stranded ``in_flight`` by a crash and the ``failed`` ones whose backoff
        passed; give up (visibly: ``given_up`` rows) on those that failed ``ledger_retry_max_attempts`` times."""
        s = self.router.settings
        stranded_before = now - timedelta(seconds=s.ledger_stranded_after_seconds)
        rows = await self.ledger.run(events_to_retry, now=now, stranded_before=stranded_before, limit=limit)
        routed = failed = given_up = 0
        for row in rows:
            if row.attempts >= s.ledger_retry_max_attempts or row.event is None:
                why = (f"gave up after {row.attempts} attempts: {row.last_error}" if row.event is not None
                       else "no event kept to route again")
                given_up += await self.ledger.run(give_up_event, vendor=row.vendor,
                                                  vendor_event_id=row.vendor_event_id, reason=why)
                log.warning("event given up", extra={"vendor": row.vendor, "event_id": row.vendor_event_id,
                                                     "reason": why})
                continue
            event = EventEnvelope.model_validate_json(self.ledger.open(row.event)).event
            received = Received(vendor=row.vendor, request_id=f"sweep-{uuid4().hex}",
                                signature=SignatureCheck.REPLAY, headers={})
            try:
                trigger = "poll" if event.source_event_id.startswith("poll:") else "replay"
                await self.accept(event, received, trigger=trigger)
                routed += 1
            except RoutingUnavailable:
                failed += 1
                break  # Temporal is away: the rest waits for the next sweep
            except Exception:
                failed += 1
                log.exception("event could not be routed again", extra={"vendor": row.vendor,
                                                                        "event_id": row.vendor_event_id})
        return SweepResult(routed=routed, failed=failed, given_up=given_up)


__all__ = ["ClientProvider", "EventIntake", "EventRouter", "KeyedLocks", "Received", "Routed", "RoutingUnavailable",
           "SweepResult"]
