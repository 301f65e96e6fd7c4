"""The worker: the parts ``bootstrap.for_worker`` builds -> activity classes -> Worker.

Run ``python worker.py`` (``make up`` does it for you). Temporal's address, namespace, TLS and API
key come from the SDK's environment configuration (``TEMPORAL_ADDRESS`` ...), see README.
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.amendments import ContractContextActivities
from activities.billing import BillingActivities
from activities.change_polls import AmendmentPollActivities, BillingPollActivities, ChangePollSettings
from activities.clm import ClmActivities
from activities.config import ConfigActivities
from activities.crm import CrmActivities
from activities.cutover import CutoverActivities, ErpMoves
from activities.erp import ErpActivities
from activities.event_ledger import EventLedgerActivities, LedgerRetention
from activities.notify import NotifyActivities
from activities.polling import DealPollActivities, DealPollSettings
from activities.reconciliation import ReconciliationActivities, ReconciliationSettings
from activities.time_billing import TimeBillingActivities
from bootstrap import Connectors, Stores, build_intake, for_worker, load_settings, open_connectors
from connectors.errors import ConnectorError
from connectors.registry import Prepares, default_registry
from intake import ClientProvider, EventIntake
from observability.metrics import sdk_runtime, worker_metrics
from observability.tracing import setup_tracing
from runtime.approval_guard import ApprovalSignatureInterceptor
from runtime.logs import configure_logging
from runtime.schedules import ensure_reconciliation_schedule
from runtime.startup import StartRefused
from settings import Settings
from stores.cutover import cutover_engine
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.backfill import CompanyBackfillWorkflow
from workflows.change_polls import AmendmentPollWorkflow, BillingEventPollWorkflow
from workflows.company_figures import CompanyFiguresWorkflow
from workflows.cutover import CutoverWorkflow
from workflows.event_ledger import EventLedgerUpkeepWorkflow
from workflows.invoicing import OneOffInvoicingWorkflow
from workflows.ledger import AccountLedgerWorkflow
from workflows.polling import CrmDealPollWorkflow
from workflows.quote_to_cash import QuoteToCashWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.time_billing import TimeBillingWorkflow

log = logging.getLogger("revops.worker")

WORKFLOWS: list[type] = [
    QuoteToCashWorkflow,
    CrmDealPollWorkflow,  # the deal poll behind the crm-deal-poll schedule
    BillingEventPollWorkflow,  # the billing poll behind the billing-event-poll schedule
    AmendmentPollWorkflow,  # the amendment poll behind the clm-amendment-poll schedule
    ContractAmendmentsWorkflow,
    AccountLedgerWorkflow,
    CompanyFiguresWorkflow,  # started by a ledger: one writer of a CRM company's figures over all its ledgers
    OneOffInvoicingWorkflow,  # started by quote-to-cash: finalizes one-off invoices when due or accepted
    TimeBillingWorkflow,  # started by quote-to-cash: bills a time-and-materials project's approved time monthly
    ReconciliationWorkflow,  # nightly behind the reconciliation schedule, or `starter.py reconcile`
    CompanyBackfillWorkflow,  # HubSpot companies to Xero contacts under the vendors' rate limits
    EventLedgerUpkeepWorkflow,  # sweeps and prunes the ingress's event ledger (event-ledger-upkeep schedule)
    CutoverWorkflow,  # `starter.py erp cutover`: moves a legal entity's books to another ERP
]


def activities_for(settings: Settings, connectors: Connectors, *, client: Client, stores: Stores,
                   intake: EventIntake | None = None) -> list[Callable[..., Any]]:
    """Every activity the worker serves: one class per role, each with its one port, and the few that are not
    a vendor call (configuration, notifications, the event ledger, reconciliation's stores). The intake (the
    poll's and the sweep's) is built over ``client`` and the stores unless given."""
    intake = intake or build_intake(settings, clients=ClientProvider.fixed(client), ledger=stores.events,
                                    clm=connectors.clm, crm=connectors.crm)
    registry = connectors.registry or default_registry(settings)
    change_polls = ChangePollSettings.from_settings(settings, registry)
    cutover = stores.cutover or cutover_engine(settings.findings_database_url)
    adapters = connectors.adapters
    adapter_of = adapters.erp_named if adapters is not None else _no_other_erp
    groups: list[Any] = [
        ConfigActivities(settings=settings, registry=registry),
        CrmActivities(crm=connectors.crm, notifications=connectors.notifications),
        ClmActivities(clm=connectors.clm),
        BillingActivities(billing=connectors.billing),
        ErpActivities(erp=connectors.erp, billing=connectors.billing, moves=ErpMoves(cutover, adapter_of)),
        CutoverActivities(client=client, engine=cutover, adapter_of=adapter_of,
                          entities=lambda: settings.legal_entities, systems=registry.systems(settings),
                          erp_name_of=lambda e: registry.erp_name_of(settings, e),
                          report_dir=settings.data_dir / "cutover"),
        TimeBillingActivities(erp=connectors.erp, billing=connectors.billing),
        ContractContextActivities(crm=connectors.crm, clm=connectors.clm, billing=connectors.billing,
                                  legal_entities=[e.code for e in settings.legal_entities]),
        DealPollActivities(settings=DealPollSettings.from_settings(settings, registry), crm=connectors.crm,
                           ledger=stores.events, intake=intake),
        BillingPollActivities(settings=change_polls, billing=connectors.billing, ledger=stores.events, intake=intake),
        AmendmentPollActivities(settings=change_polls, clm=connectors.clm, ledger=stores.events, intake=intake),
        ReconciliationActivities(settings=ReconciliationSettings.from_settings(settings, registry), clm=connectors.clm,
                                 billing=connectors.billing, erp=connectors.erp, crm=connectors.crm,  # type: ignore[arg-type]
                                 findings=stores.findings, mirror=stores.mirror),
        NotifyActivities(notifications=connectors.notifications),
        EventLedgerActivities(settings=LedgerRetention.from_settings(settings), ledger=stores.events,
                              intake=intake),
    ]
    return [fn for group in groups for fn in group.all()]


def _no_other_erp(name: str) -> Any:
    raise ValueError(f"no ERP adapter {name!r}: these connectors were built without a registry's adapters")


def build_worker(client: Client, settings: Settings, connectors: Connectors, *, stores: Stores | None = None,
                 task_queue: str | None = None, extra_workflows: Sequence[type] = (),
                 extra_activities: Sequence[Callable[..., Any]] = (), intake: EventIntake | None = None) -> Worker:
    """The worker; ``extra_*`` let a harness (the benchmarks' no-op baseline) ride along. The stores are
    opened from settings unless given."""
    stores = stores or Stores.from_settings(settings)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[*WORKFLOWS, *extra_workflows],
        activities=[*activities_for(settings, connectors, client=client, stores=stores, intake=intake),
                    *extra_activities],
        max_concurrent_activities=200,
        max_concurrent_workflow_tasks=settings.worker_workflow_task_slots,
        interceptors=[ApprovalSignatureInterceptor(settings.approval_keys())],
    )


def cache_workflow_bytecode() -> None:
    """Write the bytecode of the workflow modules if missing or stale.

    Temporal's workflow sandbox imports a workflow's module afresh for every workflow it builds (each new
    run, each run evicted from the cache). Where ``PYTHONDONTWRITEBYTECODE`` is set, as in many container
    images, every one of those imports compiled the source again; Python still reads bytecode that is there.
    A read-only install just skips this.
    """
    if not sys.dont_write_bytecode:
        return
    root = Path(__file__).resolve().parent
    for package in ("workflows", "canonical", "activities"):
        try:
            compileall.compile_dir(root / package, quiet=2, maxlevels=0)
        except OSError as exc:  # pragma: no cover - read-only installs
            log.info("could not cache bytecode of %s: %s", package, exc)


async def main(*, extra_workflows: Sequence[type] = (), extra_activities: Sequence[Callable[..., Any]] = (),
               log_level: int = logging.INFO) -> None:
    configure_logging(log_level)  # one JSON object per line, values bounded (runtime/logs.py)
    settings = load_settings()  # refuses an unsound approver registry or a development secret in use
    cache_workflow_bytecode()
    setup_tracing(settings, service="revops-worker")  # before connect: the client takes the tracing interceptor
    runtime, sdk_metrics_url = sdk_runtime(settings)
    async with await for_worker(settings, runtime=runtime) as parts, \
            worker_metrics(settings, parts.client, sdk_metrics_url=sdk_metrics_url) as metrics:
        client, connectors = parts.client, parts.connectors
        for adapter in connectors.adapters.built if connectors.adapters else []:
            if isinstance(adapter, Prepares):
                try:
                    await adapter.prepare()
                except ConnectorError as exc:  # adapters also prepare lazily before their first write
                    log.warning("could not prepare %s now (%s); will retry on first write",
                                type(adapter).__name__, exc)
        try:
            log.info("reconciliation schedule %s", await ensure_reconciliation_schedule(client, settings))
        except RPCError as exc:  # a namespace without schedule rights still runs the flows
            log.warning("could not create or update the reconciliation schedule: %s", exc.message)
        worker = build_worker(client, settings, connectors, stores=parts.stores, intake=parts.intake,
                              extra_workflows=extra_workflows, extra_activities=extra_activities)
        log.info("worker on task queue %r, namespace %r", settings.task_queue, client.namespace)
        if metrics is not None:  # `/readyz` on the metrics port: ready from here on (while Temporal answers)
            metrics.polling = True
        await worker.run()


__all__ = ["WORKFLOWS", "Connectors", "Stores", "activities_for", "build_worker", "main", "open_connectors"]


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except StartRefused as refused:
        log.error("refused to start: %s", refused)
        sys.exit(1)
