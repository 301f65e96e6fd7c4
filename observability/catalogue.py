"""The integration catalogue: one entry per flow, pointing at the code that runs it. ``make docs`` renders it into
``docs/integration-catalogue.md``; what can be read off the code is read off it there (the workflow's input
model, every activity and the connector calls it makes, hence the systems written; the transforms' first
docstring line), the rest (trigger, owner, failure path, runbook) is declared here beside the code it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from activities.amendments import ContractContextActivities
from activities.billing import BillingActivities
from activities.change_polls import AmendmentPollActivities, BillingPollActivities
from activities.clm import ClmActivities
from activities.config import ConfigActivities
from activities.crm import CrmActivities
from activities.erp import ErpActivities
from activities.event_ledger import EventLedgerActivities
from activities.notify import NotifyActivities
from activities.polling import DealPollActivities
from activities.reconciliation import ReconciliationActivities
from activities.time_billing import TimeBillingActivities
from canonical.amendments import plan_amendment
from canonical.company_figures import combined_figures
from canonical.exceptions import LEDGER_EXCEPTION_KINDS
from canonical.keys import (
    AMENDMENTS,
    BACKFILL,
    FIGURES,
    INVOICING,
    LEDGER,
    QUOTE_TO_CASH,
    TIME_BILLING,
    workflow_id_shape,
)
from canonical.ledger import apply_invoice_snapshot, compare_receivables, figures_by_currency
from canonical.policy import approval_reasons, choose_entity
from canonical.provisioning import plan_engagements, proposed_terms
from canonical.time_billing import time_charges
from connectors.registry import VENDOR_ROLES, default_registry, role_label
from settings import Settings
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

#: connector role (``self.<role>`` in activities) -> the role with the adapter the default settings choose for it
#: (``connectors/registry.py``; the defaults, not this machine's environment: the catalogue is checked in)
ROLES = {role.value: role_label(Settings.model_construct(), role) for role in VENDOR_ROLES}
#: the adapters the default settings choose: the catalogue names them as it names the roles
_S = default_registry().systems(Settings.model_construct())
_ERP = ", ".join(sorted({s.display for s in _S.erp.values()}))
_Q2C = workflow_id_shape(QUOTE_TO_CASH, _S.crm.name, "<dealId>")
_AMENDMENTS = workflow_id_shape(AMENDMENTS, _S.clm.name, "<recordId>")
_LEDGER = workflow_id_shape(LEDGER, _S.billing.name, "<customerId>")
_INVOICING = workflow_id_shape(INVOICING, _S.billing.name, "<projectCode>")
_FIGURES = workflow_id_shape(FIGURES, _S.crm.name, "<companyId>")
_TIME = workflow_id_shape(TIME_BILLING, _S.billing.name, "<projectCode>")
_BACKFILL = workflow_id_shape(BACKFILL, next(iter(_S.erp.values()), _S.crm).name, "<entity>")
_CRM, _CLM, _BILLING = _S.crm.label, _S.clm.label, _S.billing.label
#: connector methods that only read
READ_PREFIXES = ("get_", "list_", "find_", "check_", "read_", "search_", "fetch_", "load_", "verify",
                 "ensure_properties", "billing_records", "billing_schedules_by_project", "deals_modified_since",
                 "changes_since", "records_changed_since")
#: every activity class the worker serves (worker.activities_for); a flow's activities are the ones its
#: workflow module references
ACTIVITY_CLASSES: tuple[type, ...] = (ConfigActivities, CrmActivities, ClmActivities, BillingActivities, ErpActivities,
                                      ContractContextActivities, DealPollActivities, BillingPollActivities,
                                      AmendmentPollActivities, ReconciliationActivities, NotifyActivities,
                                      EventLedgerActivities, TimeBillingActivities)


@dataclass(frozen=True)
class Flow:
    """One integration flow."""

    name: str
    workflow: type
    workflow_id: str
    trigger: str
    data: str
    transforms: tuple[Callable[..., Any], ...]
    failure_path: str
    exception_kinds: tuple[str, ...]
    owner: str
    runbook: str
    notes: tuple[str, ...] = field(default_factory=tuple)


FLOWS: list[Flow] = [
    Flow(name="Quote-to-cash", workflow=QuoteToCashWorkflow, workflow_id=_Q2C,
         trigger=f"{_CRM} deal reaches the approval stage or closed-won (webhook `deal.propertyChange`, or the "
                 "deal poll that catches lost webhooks), or `starter.py start-deal`",
         data="the deal, its company, contacts and line items; executed contract terms; legal entities",
         transforms=(approval_reasons, choose_entity, proposed_terms, plan_engagements),
         failure_path="missing data waits visibly (`deal_corrected` signal, `recheck_deal` update); approval "
                      "reminders then expiry; contract stalled or cancelled; a provisioning step refused is "
                      "compensated in reverse and the run stops in `failed`; write-backs refused are noted",
         exception_kinds=("missing_data", "approval_overdue", "contract_stalled", "contract_cancelled",
                          "provisioning_failed", "write_back_failed", "deal_not_found", "vendor_auth_failed",
                          "customer_match"),
         owner="RevOps (deal desk); finance decides approvals", runbook="runbook-quote-to-cash"),
    Flow(name="CRM deal poll", workflow=CrmDealPollWorkflow, workflow_id="crm-deal-poll (schedule)",
         trigger="Temporal schedule every `poll_interval_seconds`", data="deals modified since the checkpoint",
         transforms=(),
         failure_path=f"the {_CRM} unavailable: the next poll catches up from the checkpoint",
         exception_kinds=(), owner="RevOps engineering", runbook="runbook-webhooks"),
    Flow(name="Billing event poll", workflow=BillingEventPollWorkflow, workflow_id="billing-event-poll (schedule)",
         trigger="Temporal schedule every `billing_poll_interval_seconds`",
         data=f"{_BILLING} events since the checkpoint, as their webhooks give them (same event IDs)",
         transforms=(),
         failure_path=f"the {_BILLING} unavailable: retried, then the next poll reads from the checkpoint again; "
                      "an event its webhook brought is skipped (one ledger entry)",
         exception_kinds=(), owner="RevOps engineering", runbook="runbook-webhooks"),
    Flow(name="Amendment poll", workflow=AmendmentPollWorkflow, workflow_id="clm-amendment-poll (schedule)",
         trigger="Temporal schedule every `amendment_poll_interval_seconds`",
         data=f"{_CLM} contracts changed since the checkpoint; their executed amendments, keyed by record and "
              "sequence as their webhooks are",
         transforms=(),
         failure_path=f"the {_CLM} unavailable: retried, then the next poll reads from the checkpoint again; "
                      "an amendment its webhook brought is skipped (one ledger entry)",
         exception_kinds=(), owner="RevOps engineering", runbook="runbook-webhooks"),
    Flow(name="Amendment propagation", workflow=ContractAmendmentsWorkflow, workflow_id=_AMENDMENTS,
         trigger=f"{_CLM} amendment executed (webhook, signal-with-start), or `starter.py amend`",
         data="the amendment's changed terms; the contract's provisioned entities",
         transforms=(plan_amendment,),
         failure_path="a gap in the sequence waits then becomes `amendment_gap`; a decrease waits for finance "
                      "approval; a field the ERP owns and changed becomes `ownership_conflict`; a refused write "
                      "becomes `propagation_failed` until `retry_propagation`",
         exception_kinds=("amendment_gap", "ownership_conflict", "propagation_failed", "contract_not_provisioned",
                          "vendor_auth_failed"),
         owner="RevOps (contracts); finance approves decreases", runbook="runbook-amendments"),
    Flow(name="Invoice feedback", workflow=AccountLedgerWorkflow, workflow_id=_LEDGER,
         trigger=f"{_BILLING} invoice finalized, paid, payment failed, voided, credit note (webhook, "
                 "signal-with-start)",
         data="invoices, payments and credit notes of one billing customer",
         transforms=(apply_invoice_snapshot, figures_by_currency),
         failure_path="the ERP refusing a posting becomes `erp_rejected` on the invoice (`starter.py repost`); "
                      "overdue and failed payments are marked; CRM figures refused: `write_back_failed`",
         exception_kinds=(*LEDGER_EXCEPTION_KINDS, "vendor_auth_failed"),
         owner="Finance (receivables)", runbook="runbook-erp-refused"),
    Flow(name="CRM company figures", workflow=CompanyFiguresWorkflow, workflow_id=_FIGURES,
         trigger="started (or signalled) by each ledger of the company after a batch of billing events",
         data="each ledger's per-currency sums for the company and its deals",
         transforms=(combined_figures,),
         failure_path=f"{_CRM} refusing the figures becomes `write_back_failed`, tried again hourly or at the next "
                      "report",
         exception_kinds=("write_back_failed", "vendor_auth_failed"), owner="Finance (receivables)",
         runbook="runbook-erp-refused"),
    Flow(name="One-off invoicing", workflow=OneOffInvoicingWorkflow, workflow_id=_INVOICING,
         trigger="started by quote-to-cash once a project's fixed-fee or milestone invoices exist as drafts",
         data=f"the project's draft {_BILLING} invoices and their billing dates",
         transforms=(),
         failure_path="each draft is finalized on its billing date (durable timer) or when its milestone is "
                      "accepted (`accept_milestone` update, or a person accepting it in the ERP's project system, "
                      "polled every `MILESTONE_POLL_INTERVAL_SECONDS`); a refused finalization is kept in the status "
                      "as `provisioning_failed`",
         exception_kinds=("provisioning_failed",), owner="Finance (billing)", runbook="runbook-quote-to-cash"),
    Flow(name="Time billing", workflow=TimeBillingWorkflow, workflow_id=_TIME,
         trigger="started by quote-to-cash once a time-and-materials project and its billing customer exist",
         data=f"the project's time entries in the ERP, the contract's rate card, {_BILLING} invoices of logged time",
         transforms=(time_charges,),
         failure_path="each month's end (durable timer) bills the approved time not billed yet, once per entry; a "
                      "refused period is kept in the status as `provisioning_failed` and tried again daily",
         exception_kinds=("provisioning_failed",), owner="Finance (billing)", runbook="runbook-quote-to-cash"),
    Flow(name="Reconciliation", workflow=ReconciliationWorkflow, workflow_id="reconciliation (schedule) / "
                                                                           "reconciliation-manual-<id>",
         trigger="Temporal schedule `reconciliation_cron` (nightly), or `starter.py reconcile`",
         data="billing invoices vs ERP receivables vs payments per entity and currency; contracts, projects, "
              "billing schedules; approved project time vs the billing lines that billed it",
         transforms=(compare_receivables,),
         failure_path="findings are stored and listed (`starter.py exceptions`), closed by a later run of the "
                      "same scope; a vendor outage retries",
         exception_kinds=("amount_mismatch", "missing_in_erp", "payment_mismatch", "contract_without_project",
                          "project_without_billing", "invoice_without_crm_reference", "time_not_billed",
                          "time_billed_twice"),
         owner="Finance (controllers)", runbook="runbook-reconciliation"),
    Flow(name="Company backfill", workflow=CompanyBackfillWorkflow, workflow_id=_BACKFILL,
         trigger="`starter.py backfill <entity>`", data=f"every {_CRM} company, one {_ERP} contact each",
         transforms=(),
         failure_path="rate limits pace it; a refused contact is reported in the result, the rest go on",
         exception_kinds=(), owner="RevOps engineering", runbook="runbook-vendor-errors"),
    Flow(name="ERP cut-over", workflow=CutoverWorkflow, workflow_id="cutover-<entity>-<erp>",
         trigger="`starter.py erp cutover <entity> --to <erp>`",
         data="the entity's contacts and open invoices with their payments, from its ERP to another",
         transforms=(),
         failure_path="refused (runs named) while anything posts in the entity; a vendor outage retries; a rerun "
                      "completes an interrupted one and changes nothing after a complete one",
         exception_kinds=(), owner="Finance (controllers)", runbook="runbook-vendor-errors"),
    Flow(name="Event ledger upkeep", workflow=EventLedgerUpkeepWorkflow,
         workflow_id="event-ledger-upkeep (schedule)",
         trigger="Temporal schedule every `LEDGER_UPKEEP_INTERVAL_SECONDS`",
         data="event-ledger rows: stranded `in_flight`, failed and due, older than `LEDGER_RETENTION_DAYS`",
         transforms=(),
         failure_path="an event out of attempts is marked `given_up` (visible in `starter.py events`); "
                      "`starter.py replay-event` routes it again",
         exception_kinds=(), owner="RevOps engineering", runbook="runbook-webhooks"),
]

#: runbook sections (anchor -> title, steps); the alert rules in prometheus/alerts.yml link here too
RUNBOOKS: dict[str, tuple[str, list[str]]] = {
    "runbook-quote-to-cash": ("Quote-to-cash stuck or failed", [
        f"`starter.py status {_Q2C}`: stage, what it waits for, the timeline.",
        f"Missing data: correct the deal in {_S.crm.display} (the webhook wakes the run) or `starter.py recheck`.",
        "Approval pending: `starter.py pending`, then `approve` / `reject`.",
        "Failed: the compensation undid what was created; fix the cause and `starter.py start-deal` again."]),
    "runbook-amendments": ("Amendment not propagated", [
        f"`starter.py amendments {_AMENDMENTS}`: pending, missing sequences, conflict, failure.",
        "Gap: the missing amendment is fetched by the `resolve_gap` update once the CLM has it.",
        "Conflict: decide with `resolve_conflict` (keep the ERP's value or overwrite it).",
        "Failed: fix the cause, then the `retry_propagation` update."]),
    "runbook-erp-refused": ("ERP refused a posting", [
        f"`starter.py find {_S.billing.ref('invoice', '<id>')}` finds the ledger; its status names the refused "
        "invoice and why.",
        f"Fix the data in {_ERP} or {_S.billing.display} (contact, tax type, account code), then re-post the "
        "invoice."]),
    "runbook-reconciliation": ("Reconciliation findings", [
        "`starter.py exceptions [--kind K]` lists open findings with the IDs on each side.",
        "Correct the side that is wrong; the next run of the same scope closes the finding."]),
    "runbook-webhooks": ("Webhooks refused or failing", [
        "`starter.py events --vendor V --outcome rejected|failed`: the reason per delivery.",
        "401: the signing secret in settings differs from the vendor's; 503: Temporal was unreachable "
        "and the vendor redelivers; `starter.py replay-event <id>` routes a recorded event again."]),
    "runbook-backlog": ("Task queue backlog growing", [
        "Workers are missing or saturated: check `up{job=\"revops-worker\"}` and the SDK's slot metrics.",
        "Start more workers (`python worker.py`) on the same task queue."]),
    "runbook-worker-down": ("Worker down", [
        "Nothing runs while no worker polls; Temporal keeps every run waiting, nothing is lost.",
        "Restart the worker (`python worker.py`, `make up`) and read its log for the cause."]),
    "runbook-exceptions": ("Business exception past its SLA", [
        "`starter.py find` / the Temporal UI with `ExceptionKind = \"<kind>\"` lists the runs.",
        "Follow the flow's runbook above for the kind; SLAs per kind are in settings "
        "(`exception_sla_hours`, `exception_sla_hours_by_kind`)."]),
    "runbook-approvals": ("Approval about to expire", [
        "`starter.py pending` lists approvals and their expiry; decide before the expiry rejects the deal."]),
    "runbook-vendor-auth": ("Vendor refusing our credentials", [
        "401/403 on every retry: the key, token or its scopes in settings are wrong, expired or revoked.",
        "The runs waiting on it show `ExceptionKind = \"vendor_auth_failed\"` and retry every 5 minutes; fix "
        "the credential in settings and restart the worker: they carry on by themselves."]),
    "runbook-vendor-errors": ("Vendor answering 429 or 5xx", [
        "Activities retry with the vendor's Retry-After; nothing is lost, flows slow down.",
        "Check the vendor's status page and our rate (`revops_vendor_calls_total` by status)."]),
}

__all__ = ["ACTIVITY_CLASSES", "FLOWS", "Flow", "READ_PREFIXES", "ROLES", "RUNBOOKS"]
