"""Reconciliation, the control finance signs off: billing vs ERP receivables (both ways, payments and credit
notes) per legal entity and currency; executed contracts vs projects vs billing schedules; CRM figures vs
billing. Run nightly by a Temporal schedule (``reconciliation``) and on demand (``starter.py reconcile``);
findings are stored and listed by ``starter.py exceptions``.

The run reads what changed since its checkpoint (a full pass when the last one is old enough), then compares
one control at a time. The vendors' data never travels through the history (activities keep it in the
reconciliation mirror), so the history has the same few events for 100 invoices or 100,000: no
continue-as-new is needed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.config import ConfigActivities
    from activities.models import FlowConfigRequest, ReconciliationConfig
    from activities.reconciliation import (
        ControlRequest,
        ControlResult,
        ReconciliationActivities,
        SyncRequest,
    )
    from canonical.exceptions import ExceptionKind
    from canonical.reconciliation import SourceRead
    from workflows.attributes import LEGAL_ENTITY
    from workflows.models import ReconciliationInput, ReconciliationResult, ReconciliationStage
    from workflows.status import WorkflowStatus
    from workflows.steps import run_step, step_retry

A = ReconciliationActivities
Cfg = ConfigActivities
P = TypeVar("P")
R = TypeVar("R")
STEP_TIMEOUT = timedelta(minutes=10)
READ_HEARTBEAT = timedelta(minutes=2)


@workflow.defn(name="ReconciliationWorkflow")
class ReconciliationWorkflow:
    """One reconciliation run; its result and current details are the summary (counts by kind)."""

    def __init__(self) -> None:
        self._config: ReconciliationConfig | None = None
        self._lines: list[str] = []
        self._status = WorkflowStatus(ReconciliationStage.RECONCILING, details=lambda: self._lines)

    @workflow.run
    async def run(self, request: ReconciliationInput) -> ReconciliationResult:
        scope = request.scope
        self._status.started_with(workflow.info())
        if len(scope.legal_entities) == 1:
            self._status.set(LEGAL_ENTITY.value_set(scope.legal_entities[0]))
        self._status.enter(ReconciliationStage.RECONCILING, f"scope {scope.key()}: reading configuration",
                           waiting_for="the configuration")
        self._config = config = (await self._step(
            Cfg.load_flow_config, FlowConfigRequest(flow="reconciliation", legal_entities=scope.legal_entities),
            "Read legal entities and tolerance")).for_reconciliation()
        reads = await self._read(config, request.full_pass, scope.key())
        info = workflow.info()
        run_id = f"{info.workflow_id}/{info.run_id}"
        common: dict[str, Any] = {"scope": scope.key(), "run_id": run_id, "entities": config.entities,
                                  "all_entities": not scope.legal_entities, "customer_ids": scope.customer_ids,
                                  "deal_ids": scope.deal_ids, "rounding_tolerance": config.rounding_tolerance}
        self._lines = [_reads_text(reads)]
        self._status.enter(ReconciliationStage.RECONCILING, f"scope {scope.key()}: comparing",
                           waiting_for="the controls (receivables, delivery, logged time, CRM figures)")
        controls = [self._step(A.reconcile_receivables, ControlRequest(control="receivables", entity=e, **common),
                               f"Compare billing with the ERP receivables of {e.code}") for e in config.entities]
        if not scope.customer_ids:
            controls.append(self._step(A.reconcile_delivery, ControlRequest(control="delivery", **common),
                                       "Compare contracts, projects and billing schedules"))
            controls += [self._step(A.reconcile_time, ControlRequest(control="time", entity=e, **common),
                                    f"Compare the approved time of {e.code} with billing")
                         for e in config.entities]
        controls.append(self._step(A.reconcile_crm_figures, ControlRequest(control="crm", **common),
                                   "Compare CRM figures with billing"))
        results: list[ControlResult] = list(await asyncio.gather(*controls))
        findings = [f for r in results for f in r.findings]
        counts: Counter[str] = Counter()
        for r in results:
            counts.update(r.outcome.counts)
        totals = [t for r in results for t in r.totals]
        result = ReconciliationResult(
            run_id=run_id, scope=scope.key(), counts=dict(sorted(counts.items())),
            opened=sum(r.outcome.opened for r in results), closed=sum(r.outcome.closed for r in results),
            still_open=sum(r.outcome.still_open for r in results), totals=totals, findings=findings,
            findings_total=sum(r.findings_total for r in results), reads=reads)
        self._status.exception = (ExceptionKind.RECONCILIATION_FINDINGS if result.still_open
                                  else ExceptionKind.NONE)
        lines = [f"**Scope:** `{scope.key()}`", f"**Open findings:** {result.still_open} "
                 f"({result.opened} new, {result.closed} closed)"]
        lines += [f"- {kind}: {count}" for kind, count in result.counts.items()]
        if totals:
            lines.append("**Totals (billing / ERP):**\n" + "\n".join(
                f"- {t.legal_entity} {t.currency}: invoiced {t.billing_invoiced} / {t.erp_invoiced}, "
                f"paid {t.billing_paid} / {t.erp_paid}, outstanding {t.billing_outstanding} / {t.erp_outstanding}"
                for t in totals))
        lines.append(_reads_text(reads))
        self._lines = lines
        self._status.enter(ReconciliationStage.RECONCILED, f"{result.still_open} open finding(s): {result.opened} "
                           f"new, {result.closed} closed", waiting_for="nothing")
        self._status.flush()
        return result

    async def _read(self, config: ReconciliationConfig, full: bool | None, scope: str) -> list[SourceRead]:
        """Billing and each entity's ERP tenant into the mirror, in parallel (each paced by its own limit)."""
        self._status.enter(ReconciliationStage.RECONCILING, f"scope {scope}: reading billing and the ERP of "
                           f"{', '.join(e.code for e in config.entities)} ({'full pass' if full else 'changes'})",
                           waiting_for="the reads of billing and each entity's ERP")
        sources = [None, *config.entities]
        reads = [workflow.execute_activity_method(
            A.sync_source, SyncRequest(entity=e, full=full),
            start_to_close_timeout=timedelta(seconds=config.read_timeout_seconds),
            heartbeat_timeout=READ_HEARTBEAT, summary=f"Read {'billing' if e is None else 'the ERP of ' + e.code}",
            retry_policy=step_retry(config.activity_retry_max_seconds, maximum_attempts=20)) for e in sources]
        return list(await asyncio.gather(*reads))

    async def _step(self, activity_fn: Callable[[Any, P], Awaitable[R]], arg: P, summary: str) -> R:
        # A nightly check gives up after 20 tries: tomorrow's run is the next attempt.
        return await run_step(activity_fn, arg, summary, timeout_seconds=STEP_TIMEOUT.total_seconds(),
                              retry_max_seconds=self._config.activity_retry_max_seconds if self._config else None,
                              maximum_attempts=20)


def _reads_text(reads: list[SourceRead]) -> str:
    return "**Reads:**\n" + "\n".join(f"- {r.source}: {r.mode}, {r.documents} document(s), {r.requests} "
                                      f"request(s), {r.rate_limited} rate-limited" for r in reads)
