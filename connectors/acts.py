"""What a person does in each role's system, through its emulator's ``/_sandbox/`` controls: the acts no public
API offers (a salesperson drags a deal, the customer signs, the billing system bills a period, the customer pays).

``starter.py sandbox``, ``make demo`` and the benchmarks speak to these protocols only, one per role; each
vendor's implementation is ``connectors/<vendor>/acts.py`` (named by its descriptor's ``Emulator.acts``), reached
through :func:`acts_for` / :func:`role_acts`. Deals are described neutrally (:class:`DealDraft`); the CRM's acts
turn a description into what its emulator seeds.

Every act answers through :class:`EmulatorControls`, which turns the emulator's refusals into the connector error
tree: :class:`~connectors.errors.NotFound` for an ID it does not know, :class:`~connectors.errors.Rejected` for a
refused act, :class:`~connectors.errors.Unavailable` when it is not reachable.
"""

from __future__ import annotations

import importlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from canonical import ContractTerms
from canonical.ownership import SystemRole
from connectors.errors import NotFound, Rejected, Unavailable
from connectors.spec import AdapterSpec

if TYPE_CHECKING:  # pragma: no cover
    from canonical import LegalEntity
    from connectors.registry import AdapterRegistry
    from settings import Settings


# -- a deal, as a salesperson leaves it in a CRM ---------------------------------------------------------
@dataclass(frozen=True)
class DealLineDraft:
    """One line item: a product code, a name, decimal strings for quantity, price and discount percent."""

    sku: str
    name: str
    quantity: str = "1"
    price: str = "1000.00"
    discount: str = "0"
    model: str | None = None
    frequency: str | None = None
    entity: str | None = None


#: the line items a deal of each billing model gets when its description names none
LINES_BY_MODEL: dict[str, list[DealLineDraft]] = {
    "subscription": [DealLineDraft("PLAT-PRO", "Platform Pro seats", quantity="20", price="45.00",
                                   model="subscription", frequency="monthly")],
    "milestone": [DealLineDraft("MS-DESIGN", "Design phase", price="12000.00", model="milestone"),
                  DealLineDraft("MS-BUILD", "Build phase", price="18000.00", model="milestone")],
    "time_and_materials": [DealLineDraft("TM-CONSULTANT", "Consultant", quantity="120", price="150.00",
                                         model="time_and_materials"),
                           DealLineDraft("TM-ARCHITECT", "Architect", quantity="40", price="210.00",
                                         model="time_and_materials")],
    "retainer": [DealLineDraft("RET-SUPPORT", "Support retainer", quantity="1", price="2500.00", model="retainer",
                               frequency="monthly")],
    "fixed_fee": [DealLineDraft("FF-SETUP", "Implementation (fixed fee)", price="9500.00", model="fixed_fee")],
}

#: fields a description may leave empty (``--missing``): the flow must stop in a data exception
MISSABLE_FIELDS = ("region", "start_date", "currency", "payment_terms", "contact")


@dataclass
class DealDraft:
    """A deal with its company, billing contact and line items, in no CRM's words. ``None`` leaves a field empty;
    ``stage`` None: the CRM's approval stage (before closed-won)."""

    model: str = "subscription"
    region: str | None = "NA"
    currency: str | None = "USD"
    country: str = "US"
    entity: str | None = None
    start_date: str | None = "2027-01-01"
    end_date: str | None = "2027-12-31"
    payment_terms: str | None = "30"
    non_standard: bool = False
    lines: list[DealLineDraft] | None = None
    with_contact: bool = True
    stage: str | None = None
    owner: str | None = None
    name: str = field(default_factory=lambda: f"Deal {uuid.uuid4().hex[:6]}")
    company: str = field(default_factory=lambda: f"Acme {uuid.uuid4().hex[:8]} GmbH")

    def deal_lines(self) -> list[DealLineDraft]:
        """The line items: those given, else the model's defaults."""
        return list(self.lines) if self.lines is not None else list(LINES_BY_MODEL[self.model])

    def with_discount(self, percent: Decimal | str) -> DealDraft:
        """This deal with ``percent`` discount on every line."""
        return replace(self, lines=[replace(line, discount=str(percent)) for line in self.deal_lines()])

    def without(self, missing: Iterable[str]) -> DealDraft:
        """This deal with the named :data:`MISSABLE_FIELDS` left empty."""
        gone = set(missing)
        unknown = gone - set(MISSABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot leave out {', '.join(sorted(unknown))} (one of {', '.join(MISSABLE_FIELDS)})")
        return replace(self, region=None if "region" in gone else self.region,
                       start_date=None if "start_date" in gone else self.start_date,
                       currency=None if "currency" in gone else self.currency,
                       payment_terms=None if "payment_terms" in gone else self.payment_terms,
                       with_contact=self.with_contact and "contact" not in gone)

    @property
    def domain(self) -> str:
        """The company's web domain (its billing contact's e-mail domain)."""
        words = self.company.split()
        return f"{words[1] if len(words) > 1 else words[0]}.example.com"


# -- what the acts answer --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeededDeal:
    deal_id: str
    company_id: str


@dataclass(frozen=True)
class StageMove:
    deal_id: str
    stage: str
    changed: bool


@dataclass(frozen=True)
class Signed:
    contract_id: str
    record_id: str
    status: str


@dataclass(frozen=True)
class Billed:
    """The invoice a billed period made (``invoice_id`` empty: nothing left to bill, e.g. past the end)."""

    subscription_id: str
    invoice_id: str
    status: str
    amount_due: Decimal
    currency: str


@dataclass(frozen=True)
class Paid:
    invoice_id: str
    amount: Decimal
    currency: str
    status: str
    amount_remaining: Decimal
    payment_id: str = ""


@dataclass(frozen=True)
class Settled:
    """What a person in billing did to an invoice: a credit note (``credit_note_id``), a void or a write-off."""

    invoice_id: str
    status: str
    credit_note_id: str = ""
    amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class BilledInvoice:
    """An invoice as the billing system holds it (amounts in major units)."""

    invoice_id: str
    customer_id: str
    status: str
    total: Decimal
    amount_paid: Decimal
    lines: tuple[Decimal, ...]
    currency: str


@dataclass(frozen=True)
class ReceivableSeen:
    """A customer invoice as the ERP holds it: ``reference`` is the billing system's invoice ID."""

    tenant: str
    reference: str
    status: str
    paid: bool
    voided: bool
    total: Decimal
    lines: tuple[Decimal, ...]


# -- the emulator's controls, common to every vendor -----------------------------------------------------
#: ``(tenant, document)`` rows of one kind of record in an emulator's store (what a census counts)
Records = list[tuple[str, dict[str, Any]]]


class RecordSource(Protocol):
    """An emulator's stored records, by kind (the benchmarks read its SQLite file after the run)."""

    def records(self, kind: str) -> Records:
        ...


class EmulatorControls:
    """One emulator's ``/_sandbox/`` API over one http client; every vendor's acts build on it."""

    def __init__(self, spec: AdapterSpec, base_url: str, http: httpx.AsyncClient) -> None:
        self.spec = spec
        self.base_url = base_url.rstrip("/")
        self.http = http

    @property
    def label(self) -> str:
        """``the CRM (HubSpot)``: how texts name this system."""
        return f"the {self.spec.role.label} ({self.spec.display_name})"

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """``method path`` with a JSON body; the answer's JSON (None when empty)."""
        url = f"{self.base_url}{path}"
        try:
            response = await self.http.request(method, url, json=body, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.label} emulator at {self.base_url} is not reachable ({exc}); is `make up` "
                              "running?", vendor=self.spec.name) from exc
        if response.status_code == 404:
            raise NotFound(_message(response), vendor=self.spec.name, status=404)
        if response.status_code >= 400:
            raise Rejected(f"refused ({response.status_code}): {_message(response)}", vendor=self.spec.name,
                           status=response.status_code)
        return response.json() if response.content else None

    async def control(self, path: str, body: Any = None, *, method: str = "POST") -> Any:
        return await self.call(method, f"/_sandbox/{path}", body)

    async def faults(self, **faults: Any) -> None:
        """Inject faults (``error_rate``, ``status``, ``rate_limit_per_second``, ...)."""
        await self.control("faults", faults)

    async def clear_faults(self) -> None:
        await self.control("faults", method="DELETE")

    async def stats(self) -> dict[str, Any]:
        """Requests, faults, rate-limited answers and timeouts so far."""
        return dict(await self.control("stats", method="GET"))

    async def counts(self) -> dict[str, int]:
        return dict(await self.control("counts", method="GET"))

    async def deliveries(self) -> list[dict[str, Any]]:
        """The webhook deliveries it made lately (``body`` as sent)."""
        return list((await self.control("webhooks", method="GET"))["deliveries"])

    async def webhook_retries(self, max_attempts: int) -> None:
        await self.control("webhook-retries", {"max_attempts": max_attempts})

    async def webhooks_off(self) -> None:
        """Send no webhooks any more (a harness delivers them itself)."""
        await self.control("webhooks", method="DELETE")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error or body.get("message") or body.get("Message") or body.get("detail") or body)
    return str(body)[:200]


# -- the acts of each role -------------------------------------------------------------------------------
@runtime_checkable
class Acts(Protocol):
    """What every system's acts offer: its emulator's controls, and its webhook signature (to deliver again)."""

    controls: EmulatorControls

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """Headers that make ``body`` posted to ``url`` a delivery of this vendor's (signature, content type)."""
        ...


def delivery_url(acts: Acts, url: str) -> str:
    """``url`` as the vendor's webhook subscription calls it: most vendors sign the body and call the bare URL;
    one whose acts define ``delivery_url`` (a shared secret in the query, say) says how."""
    own = getattr(acts, "delivery_url", None)
    return str(own(url)) if callable(own) else url


@runtime_checkable
class CrmActs(Acts, Protocol):
    """A salesperson in the CRM."""

    @property
    def approval_stage(self) -> str:
        ...

    @property
    def closed_won_stage(self) -> str:
        ...

    async def seed_deal(self, draft: DealDraft) -> SeededDeal:
        """Create the deal with its company, billing contact and line items."""
        ...

    async def move_deal(self, deal_id: str, stage: str | None = None) -> StageMove:
        """Drag the deal to ``stage`` (default closed-won); the CRM's webhook tells the flow."""
        ...

    async def edit_deal(self, deal_id: str, fields: dict[str, str]) -> dict[str, Any]:
        """Set deal fields: neutral names (``region``, ``start_date``, ``legal_entity``, ``end_date``,
        ``payment_terms``, ``currency``) or the CRM's own property names."""
        ...

    async def written_back(self, deal_id: str, field: str) -> str:
        """What the flows wrote back to the deal's :class:`~canonical.deal.DealWriteBack` ``field`` ("" if
        nothing yet)."""
        ...

    async def company_figures(self, company_id: str, currency: str) -> tuple[str | None, str | None]:
        """The billed and paid figures in ``currency`` the ledger wrote to the company (decimal strings, None
        when absent)."""
        ...

    def deal_id(self, text: str) -> str:
        """The deal ID in ``text`` (a bare ID or a quote-to-cash workflow ID)."""
        ...

    def is_deal_id(self, text: str) -> bool:
        """Whether ``text`` names a deal (rather than another system's object)."""
        ...

    def deals_seen(self, records: RecordSource) -> Counter[str]:
        """Deal ID -> how many records the CRM holds for it."""
        ...

    def companies_seen(self, records: RecordSource) -> Counter[str]:
        """Company name -> how many companies have it."""
        ...


@runtime_checkable
class ClmActs(Acts, Protocol):
    """The customer and the legal team in the CLM."""

    async def sign(self, contract_id: str, *, executed_date: str | None = None) -> Signed:
        """Every party signs; the contract is executed."""
        ...

    async def decline(self, contract_id: str, *, reason: str) -> Signed:
        """The counterparty declines; the contract is cancelled."""
        ...

    async def auto_sign(self, delay_seconds: float) -> None:
        """From now on every contract is signed ``delay_seconds`` after its launch."""
        ...

    async def amend(self, record_id: str, *, sequence: int, before: ContractTerms | None = None,
                    after: ContractTerms | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute amendment ``sequence`` of an executed contract: what changes from ``before`` to ``after``,
        plus ``attributes`` in the CLM's own names. The CLM's answer, with ``amendment_id`` set to the
        amendment's own ID (what the CLM's webhook names)."""
        ...

    def contracts_seen(self, records: RecordSource) -> Counter[str]:
        """Deal ID -> how many contracts were launched for it."""
        ...


@runtime_checkable
class BillingActs(Acts, Protocol):
    """The billing system's clock and the customer's bank."""

    async def bill_next_period(self, subscription_id: str) -> Billed:
        """Bill the subscription's next period (the invoice is finalized)."""
        ...

    async def pay(self, invoice_id: str, amount: Decimal | None = None) -> Paid:
        """The customer pays ``amount`` (major units of the invoice's currency; None: what remains)."""
        ...

    async def fail_payment(self, invoice_id: str) -> dict[str, Any]:
        """A payment attempt fails."""
        ...

    async def credit(self, invoice_id: str, amount: Decimal, *, key: str) -> Settled:
        """Finance issues a credit note for ``amount`` (major units) of the invoice, open or paid. ``key`` makes
        a retried request the same credit note (acts go through the vendor's API, faults and all)."""
        ...

    async def void(self, invoice_id: str, *, key: str) -> Settled:
        """Finance voids an open invoice."""
        ...

    async def write_off(self, invoice_id: str, *, key: str) -> Settled:
        """Finance writes off what remains of an open invoice (marks it uncollectible)."""
        ...

    def subscription_ids(self, ids: Iterable[str]) -> list[str]:
        """Those of ``ids`` that are subscriptions (what can be billed period by period)."""
        ...

    def customers_seen(self, records: RecordSource) -> Counter[str]:
        """Our customer reference -> live customers holding it."""
        ...

    def live_subscriptions(self, records: RecordSource) -> Counter[str]:
        """Customer ID -> its subscriptions not cancelled."""
        ...

    def invoices(self, records: RecordSource) -> list[BilledInvoice]:
        ...

    def invoice_events(self, records: RecordSource, invoice_ids: set[str]) -> list[bytes]:
        """The webhook bodies of the invoices' finalization and payment, in order (to deliver them again)."""
        ...


@runtime_checkable
class ErpActs(Acts, Protocol):
    """A bookkeeper in the ERP."""

    def customers_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        """``(tenant, our customer reference)`` -> customers holding it."""
        ...

    def projects_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        """``(tenant, project code)`` -> projects holding it."""
        ...

    def receivables(self, records: RecordSource) -> list[ReceivableSeen]:
        ...

    def payments_per_invoice(self, records: RecordSource) -> Counter[str]:
        """ERP invoice ID -> payments recorded against it."""
        ...

    def credit_notes_seen(self, records: RecordSource) -> Counter[str]:
        """Our credit note reference (the billing credit note ID) -> credit notes holding it, voided ones too."""
        ...

    async def import_invoices(self, tenant_id: str, invoices: list[tuple[Any, str]]) -> dict[str, str]:
        """Post ``(invoice, ERP contact ID)`` pairs in bulk, as an import would; billing ID -> ERP invoice ID."""
        ...

    async def import_payments(self, tenant_id: str, payments: list[tuple[str, Decimal, str]]) -> None:
        """Record ``(ERP invoice ID, amount, reference)`` payments in bulk."""
        ...


@dataclass(frozen=True)
class TimeLogged:
    """A time entry a person logged in the project system."""

    entry_id: str
    project_id: str
    task: str
    user: str
    minutes: int
    day: date
    status: str


@runtime_checkable
class TimesheetActs(Protocol):
    """A person logging time in the ERP's project system (an ERP whose projects take time entries)."""

    async def log_time(self, project: str, *, hours: Decimal, user: str, task: str, day: date | None = None,
                       description: str | None = None) -> TimeLogged:
        """Log ``hours`` on the project's task (a rate-card role or a task name) by ``user`` (name, email or
        ID); ``project`` is our project code (``P-<deal>-<ENTITY>``) or the ERP's project ID."""
        ...


@dataclass(frozen=True)
class MilestoneAccepted:
    """A milestone a person accepted in the project system (its fixed-price task)."""

    project_id: str
    task_id: str
    task: str
    status: str
    accepted_by: str


@runtime_checkable
class MilestoneActs(Protocol):
    """A person accepting a delivered milestone in the ERP's project system (the flow invoices it then)."""

    async def accept_milestone(self, project: str, milestone: str, *, accepted_by: str) -> MilestoneAccepted:
        """Accept ``milestone`` (its code, e.g. ``MS-DESIGN``) of ``project`` (our project code or the ERP's
        project ID) as ``accepted_by``; accepting it again changes nothing."""
        ...


# -- reaching them through the registry ------------------------------------------------------------------
def acts_for(spec: AdapterSpec, settings: Settings, http: httpx.AsyncClient) -> Any:
    """The acts of ``spec``'s vendor (its module's ``create_acts(controls, vendor_settings, settings)``)."""
    if spec.emulator is None or not spec.emulator.acts:
        raise ValueError(f"{spec.display_name} has no acts (no emulator entry names an acts module)")
    config = spec.load(settings)
    module = importlib.import_module(spec.emulator.acts)
    return module.create_acts(EmulatorControls(spec, config.base_url, http), config, settings)


def role_acts(settings: Settings, role: SystemRole, http: httpx.AsyncClient,
              registry: AdapterRegistry | None = None) -> Any:
    """The acts of the adapter settings choose for ``role`` (the default ERP's for the ERP)."""
    from connectors.registry import default_registry

    registry = registry or default_registry(settings)
    return acts_for(registry.chosen(settings, role), settings, http)


def erp_acts(settings: Settings, entity: LegalEntity, http: httpx.AsyncClient,
             registry: AdapterRegistry | None = None) -> Any:
    """The acts of the ERP keeping ``entity``'s books."""
    from connectors.registry import default_registry

    registry = registry or default_registry(settings)
    return acts_for(registry.erp_of(settings, entity), settings, http)


@dataclass
class RoleActs:
    """The acts of every role settings choose, one http client (``starter.py sandbox``, the demo, benchmarks)."""

    crm: CrmActs
    clm: ClmActs
    billing: BillingActs
    erp: ErpActs
    #: every system's acts, each once (the default ERP's and each entity's ERP's)
    every: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, settings: Settings, http: httpx.AsyncClient, registry: AdapterRegistry | None = None) -> RoleActs:
        from connectors.registry import default_registry

        registry = registry or default_registry(settings)
        specs = registry.in_use(settings)
        by_spec = {(s.role, s.name): acts_for(s, settings, http) for s in specs if s.emulator and s.emulator.acts}

        def chosen(role: SystemRole) -> Any:
            spec = registry.chosen(settings, role)
            return by_spec.get((role, spec.name)) or acts_for(spec, settings, http)

        return cls(crm=chosen(SystemRole.CRM), clm=chosen(SystemRole.CLM), billing=chosen(SystemRole.BILLING),
                   erp=chosen(SystemRole.ERP), every=list(by_spec.values()))


__all__ = ["LINES_BY_MODEL", "MISSABLE_FIELDS", "Acts", "Billed", "BilledInvoice", "BillingActs", "ClmActs",
           "CrmActs", "DealDraft", "DealLineDraft", "EmulatorControls", "ErpActs", "Paid", "ReceivableSeen",
           "MilestoneAccepted", "MilestoneActs",
           "RecordSource", "Records", "RoleActs", "SeededDeal", "Settled", "Signed", "StageMove", "TimeLogged",
           "TimesheetActs",
           "acts_for", "delivery_url", "erp_acts",
           "role_acts"]
