"""The canonical model: one language for every flow. Imports no connector, Temporal or SQL code."""

from canonical.billing import (
    BillingSchedule,
    BillingScheduleKind,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    ScheduledCharge,
    TaxLine,
)
from canonical.contract import (
    Amendment,
    AmendmentChange,
    BillingTrigger,
    Contract,
    ContractStatus,
    ContractTerms,
    Milestone,
    RateCardEntry,
    RecurringCharge,
    value_decreases,
)
from canonical.deal import BillingInterval, BillingModel, Deal, DealLine, MissingField, describe_missing
from canonical.events import (
    AmendmentExecuted,
    ContractExecuted,
    CreditNoteIssued,
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
from canonical.money import Money, PricedLine, line_amount, minor_unit, price_line, round_amount, sum_money
from canonical.ownership import FIELD_OWNERSHIP, OwnershipViolation, SystemRole, guard_write, owner_of
from canonical.parties import Account, Address, Contact, LegalEntity
from canonical.project import Engagement, Project, ProjectTask, TaskChargeType, TimeEntry
from canonical.refs import ExternalRef, ref

__all__ = [
    "Account", "Address", "Amendment", "AmendmentChange", "AmendmentExecuted", "BillingInterval",
    "BillingModel", "BillingSchedule", "BillingScheduleKind", "BillingTrigger", "Contact", "Contract",
    "ContractExecuted", "ContractStatus", "ContractTerms", "CreditNote", "CreditNoteIssued", "Deal",
    "DealChanged", "DealLine", "DealStageReached", "DomainEvent", "Engagement", "ErpRecordChanged",
    "EventEnvelope", "ExternalRef", "FIELD_OWNERSHIP", "Invoice", "InvoiceFinalized", "InvoiceLine",
    "InvoicePaid", "InvoicePaymentFailed", "InvoiceStatus", "InvoiceVoided", "LegalEntity", "Milestone",
    "MissingField", "Money", "PricedLine", "OwnershipViolation", "Payment", "Project", "ProjectTask",
    "RateCardEntry", "RecurringCharge", "ScheduledCharge", "SystemRole", "TaskChargeType", "TaxLine", "TimeEntry",
    "describe_missing",
    "guard_write", "line_amount", "minor_unit", "price_line", "owner_of", "ref", "round_amount", "sum_money",
    "value_decreases",
]
