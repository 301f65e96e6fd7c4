"""Reconciliation: billing vs ERP receivables vs payments per legal entity and currency, executed contracts
without a project, projects without billing, invoices without a CRM reference. Run nightly by a Temporal
schedule (``reconciliation``) and on demand (``starter.py reconcile``); findings are stored and listed by
``starter.py exceptions``."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import (
        DeliveryRequest,
        FindingsBatch,
        ReceivablesRequest,
        ReconciliationActivities,
        ReconciliationConfig,
        ReconciliationConfigRequest,
    )
    from canonical.ledger import Finding
    from workflows.attributes import EXCEPTION_KIND, STAGE
    from workflows.models import ReconciliationInput, ReconciliationResult
    from workflows.steps import run_step

A = ReconciliationActivities
STEP_TIMEOUT = timedelta(minutes=10)


@workflow.defn(name="ReconciliationWorkflow")
class ReconciliationWorkflow:
    """One reconciliation run; its result and current details are the summary (counts by kind)."""

    def __init__(self) -> None:
        self._config: ReconciliationConfig | None = None

    @workflow.run
    async def run(self, request: ReconciliationInput) -> ReconciliationResult:
        scope = request.scope
        workflow.upsert_search_attributes([STAGE.value_set("reconciling"), EXCEPTION_KIND.value_set("")])
        self._details(f"**Reconciling** scope `{scope.key()}`")
        self._config = await self._step(A.load_reconciliation_config,
                                        ReconciliationConfigRequest(legal_entities=scope.legal_entities),
                                        "Read legal entities and tolerance")
        config = self._config
        receivables = [self._step(A.reconcile_receivables,
                                  ReceivablesRequest(entity=e, customer_ids=scope.customer_ids,
                                                     rounding_tolerance=config.rounding_tolerance),
                                  f"Compare Stripe invoices with Xero receivables of {e.code}")
                       for e in config.entities]
        delivery = self._step(A.reconcile_delivery, DeliveryRequest(entities=config.entities, deal_ids=scope.deal_ids),
                              "Compare Ironclad contracts, Xero projects and Stripe schedules")
        results = await asyncio.gather(*receivables, delivery)
        findings: list[Finding] = [f for r in results for f in r.findings]
        totals = [t for r in results[:-1] for t in r.totals]
        info = workflow.info()
        run_id = f"{info.workflow_id}/{info.run_id}"
        outcome = await self._step(A.record_findings, FindingsBatch(scope=scope.key(), run_id=run_id,
                                                                    findings=findings),
                                   f"Store {len(findings)} finding(s)")
        counts = dict(sorted(Counter(f.kind.value for f in findings).items()))
        result = ReconciliationResult(run_id=run_id, scope=scope.key(), counts=counts, opened=outcome.opened,
                                      closed=outcome.closed, still_open=outcome.still_open, totals=totals,
                                      findings=findings)
        workflow.upsert_search_attributes([STAGE.value_set("reconciled"),
                                           EXCEPTION_KIND.value_set("reconciliation_findings" if findings else "")])
        lines = [f"**Scope:** `{scope.key()}`", f"**Open findings:** {len(findings)} "
                 f"({outcome.opened} new, {outcome.closed} closed)"]
        lines += [f"- {kind}: {count}" for kind, count in counts.items()]
        if totals:
            lines.append("**Totals (billing / ERP):**\n" + "\n".join(
                f"- {t.legal_entity} {t.currency}: invoiced {t.billing_invoiced} / {t.erp_invoiced}, "
                f"paid {t.billing_paid} / {t.erp_paid}, outstanding {t.billing_outstanding} / {t.erp_outstanding}"
                for t in totals))
        self._details("\n\n".join(lines))
        return result

    def _details(self, text: str) -> None:
        workflow.set_current_details(text)

    async def _step(self, activity_fn: Any, arg: Any, summary: str) -> Any:
        # A nightly check gives up after 20 tries: tomorrow's run is the next attempt.
        return await run_step(activity_fn, arg, summary, timeout_seconds=STEP_TIMEOUT.total_seconds(),
                              retry_max_seconds=self._config.activity_retry_max_seconds if self._config else None,
                              maximum_attempts=20)
