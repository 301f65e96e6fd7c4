"""The business KPIs the source documents ask for, as pure functions over facts gathered from the running
system (``observability/kpis.py`` gathers them; ``starter.py kpis`` prints them; the worker exports them).

Per legal entity, durations with p50 and p90 (nearest-rank percentiles: the value at rank ``ceil(p x n)``
of the sorted sample, so every figure is one observed value and can be computed by hand):

- contract signed -> project created; deal closed-won (the run's start) -> billing live;
- amendment executed -> propagated to every system (the amendment workflow's cycle time);
- billing exception rate: invoices needing a person / all invoices;
- invoices aligned to contract terms: invoices that name their deal, in an entity the deal was provisioned
  in, in the contract's currency / all invoices;
- DSO per entity and currency: outstanding / billed in the window x the window (the ledger's formula, see
  :func:`dso_days`);
- webhook-to-workflow latency: the vendor's event time -> Temporal accepted the start or signal;
- data-quality rates: deals that entered a data exception / all deals; duplicate customers avoided
  (an existing ERP or billing customer found instead of a new one created) / all customer look-ups.

No connector, Temporal or SQL code here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field

from canonical.billing import InvoiceStatus
from canonical.ledger import LedgerInvoice

ALL_ENTITIES = "all"


class DealFacts(BaseModel):
    """What one quote-to-cash run tells the KPIs (from its ``status`` query's milestones)."""

    deal_id: str
    legal_entities: list[str] = Field(default_factory=list, description="where it was provisioned (or routed)")
    started_at: datetime | None = Field(default=None, description="the deal reached closed-won / approval stage")
    contract_signed_at: datetime | None = None
    project_created_at: datetime | None = Field(default=None, description="the first ERP project created")
    billing_live_at: datetime | None = Field(default=None, description="the last billing schedule created")
    contract_currency: str | None = None
    entered_data_exception: bool = False
    customers_reused: int = Field(default=0, description="ERP/billing customers found instead of created")
    customers_created: int = 0


class AmendmentFacts(BaseModel):
    """One applied amendment and its propagation cycle time."""

    record_id: str
    sequence: int
    legal_entities: list[str] = Field(default_factory=list)
    executed_at: datetime | None = None
    cycle_time_seconds: float | None = None


class InvoiceFacts(BaseModel):
    """One billing invoice as the ledger knows it, and whether a person has to look at it."""

    invoice: LedgerInvoice
    needs_person: bool = Field(default=False, description="refused by the ERP or an open reconciliation finding")


class DeliveryFacts(BaseModel):
    """One webhook event handed to Temporal: when the vendor says it happened, when Temporal had it."""

    vendor: str
    occurred_at: datetime
    routed_at: datetime


class Durations(BaseModel):
    """A sample of durations in seconds: how many, p50 and p90 (None when empty)."""

    n: int = 0
    p50_seconds: float | None = None
    p90_seconds: float | None = None


class Rate(BaseModel):
    """A count over a total; ``rate`` is None when the total is zero."""

    count: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.count / self.total if self.total else None


class DsoFigure(BaseModel):
    currency: str
    outstanding: str
    billed_in_window: str
    dso_days: str | None = Field(default=None, description="None when nothing was billed in the window")


class EntityKpis(BaseModel):
    """Every KPI for one legal entity (``all``: every entity together)."""

    legal_entity: str
    deals: int = 0
    contract_signed_to_project: Durations = Field(default_factory=Durations)
    closed_won_to_billing_live: Durations = Field(default_factory=Durations)
    amendment_propagation: Durations = Field(default_factory=Durations)
    billing_exceptions: Rate = Field(default_factory=Rate)
    invoices_aligned: Rate = Field(default_factory=Rate)
    dso: list[DsoFigure] = Field(default_factory=list)
    data_exceptions: Rate = Field(default_factory=Rate)
    duplicate_customers_avoided: Rate = Field(default_factory=Rate)


class KpiReport(BaseModel):
    """The report: per entity, all entities together, and the webhook latency (not per entity)."""

    as_of: date
    since: datetime | None = None
    dso_window_days: int
    entities: list[EntityKpis] = Field(default_factory=list)
    webhook_to_workflow: Durations = Field(default_factory=Durations)
    webhook_to_workflow_by_vendor: dict[str, Durations] = Field(default_factory=dict)

    def entity(self, code: str) -> EntityKpis:
        for kpis in self.entities:
            if kpis.legal_entity == code:
                return kpis
        raise KeyError(code)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the value at rank ``ceil(p/100 x n)`` of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def durations(values: Iterable[float]) -> Durations:
    sample = list(values)
    return Durations(n=len(sample), p50_seconds=percentile(sample, 50), p90_seconds=percentile(sample, 90))


def _between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def dso_days(outstanding: Decimal, billed_in_window: Decimal, window_days: int) -> Decimal | None:
    """Days sales outstanding = outstanding / billed in the window x the window's days, to 0.1 day.

    ``None`` when nothing was billed in the window (and something is owed); ``0`` when nothing is owed.
    """
    if billed_in_window > 0:
        return (outstanding / billed_in_window * window_days).quantize(Decimal("0.1"))
    return Decimal(0) if outstanding == 0 else None


def dso_by_currency(invoices: Iterable[LedgerInvoice], *, today: date, window_days: int) -> list[DsoFigure]:
    """DSO per currency over the invoices: outstanding (after payments and credit notes issued before payment)
    over the totals of the live invoices issued in the last ``window_days`` days (voided ones excluded)."""
    window_start = today - timedelta(days=window_days)
    by_currency: dict[str, tuple[Decimal, Decimal]] = {}
    for inv in invoices:
        outstanding, billed = by_currency.get(inv.currency, (Decimal(0), Decimal(0)))
        outstanding += inv.outstanding
        if inv.status is not InvoiceStatus.VOID and inv.issued_on and inv.issued_on > window_start:
            billed += inv.total
        by_currency[inv.currency] = (outstanding, billed)
    figures = []
    for currency, (outstanding, billed) in sorted(by_currency.items()):
        dso = dso_days(outstanding, billed, window_days)
        figures.append(DsoFigure(currency=currency, outstanding=str(outstanding), billed_in_window=str(billed),
                                 dso_days=str(dso) if dso is not None else None))
    return figures


def invoice_aligned(invoice: LedgerInvoice, deals: dict[str, DealFacts]) -> bool:
    """The invoice names its deal, the deal was provisioned in the invoice's entity, in the contract's currency."""
    deal = deals.get(invoice.deal_id or "")
    if deal is None:
        return False
    if invoice.legal_entity not in deal.legal_entities:
        return False
    return deal.contract_currency is None or deal.contract_currency == invoice.currency


def _entity_kpis(code: str, deals: list[DealFacts], amendments: list[AmendmentFacts], invoices: list[InvoiceFacts],
                 all_deals: dict[str, DealFacts], *, today: date, window_days: int) -> EntityKpis:
    reused = sum(d.customers_reused for d in deals)
    lookups = reused + sum(d.customers_created for d in deals)
    return EntityKpis(
        legal_entity=code, deals=len(deals),
        contract_signed_to_project=durations(
            v for d in deals if (v := _between(d.contract_signed_at, d.project_created_at)) is not None),
        closed_won_to_billing_live=durations(
            v for d in deals if (v := _between(d.started_at, d.billing_live_at)) is not None),
        amendment_propagation=durations(a.cycle_time_seconds for a in amendments if a.cycle_time_seconds is not None),
        billing_exceptions=Rate(count=sum(1 for i in invoices if i.needs_person), total=len(invoices)),
        invoices_aligned=Rate(count=sum(1 for i in invoices if invoice_aligned(i.invoice, all_deals)),
                              total=len(invoices)),
        dso=dso_by_currency((i.invoice for i in invoices), today=today, window_days=window_days),
        data_exceptions=Rate(count=sum(1 for d in deals if d.entered_data_exception), total=len(deals)),
        duplicate_customers_avoided=Rate(count=reused, total=lookups),
    )


def compute_kpis(*, deals: Sequence[DealFacts], amendments: Sequence[AmendmentFacts],
                 invoices: Sequence[InvoiceFacts], deliveries: Sequence[DeliveryFacts], today: date,
                 dso_window_days: int, entity: str | None = None, since: datetime | None = None) -> KpiReport:
    """Every KPI per legal entity (one entity when ``entity`` is given) and for all entities together.

    A deal or amendment spanning several entities counts in each; a deal with no entity yet (still loading,
    or in a data exception) counts only under ``all``.
    """
    by_id = {d.deal_id: d for d in deals}
    codes = sorted({e for d in deals for e in d.legal_entities} | {e for a in amendments for e in a.legal_entities}
                   | {i.invoice.legal_entity for i in invoices if i.invoice.legal_entity})
    if entity is not None:
        codes = [entity]
    report = KpiReport(as_of=today, since=since, dso_window_days=dso_window_days)
    for code in codes:
        report.entities.append(_entity_kpis(
            code, [d for d in deals if code in d.legal_entities], [a for a in amendments if code in a.legal_entities],
            [i for i in invoices if i.invoice.legal_entity == code], by_id, today=today, window_days=dso_window_days))
    if entity is None:
        report.entities.append(_entity_kpis(ALL_ENTITIES, list(deals), list(amendments), list(invoices), by_id,
                                            today=today, window_days=dso_window_days))
    report.webhook_to_workflow = durations(_between(d.occurred_at, d.routed_at) or 0.0 for d in deliveries)
    for vendor in sorted({d.vendor for d in deliveries}):
        report.webhook_to_workflow_by_vendor[vendor] = durations(
            _between(d.occurred_at, d.routed_at) or 0.0 for d in deliveries if d.vendor == vendor)
    return report


__all__ = ["ALL_ENTITIES", "AmendmentFacts", "DealFacts", "DeliveryFacts", "DsoFigure", "Durations", "EntityKpis",
           "InvoiceFacts", "KpiReport", "Rate", "compute_kpis", "dso_by_currency", "dso_days", "durations",
           "invoice_aligned", "percentile"]
