"""The one list of business exception kinds: the ``ExceptionKind`` search attribute, the deal's
``revops_exception`` property, the metrics' labels and the catalogue all speak these names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum


class ExceptionKind(StrEnum):
    """Why a workflow needs a person (or is waiting on a vendor); empty when healthy."""

    NONE = ""
    # quote-to-cash
    MISSING_DATA = "missing_data"
    APPROVAL_OVERDUE = "approval_overdue"
    CONTRACT_STALLED = "contract_stalled"
    CONTRACT_CANCELLED = "contract_cancelled"
    PROVISIONING_FAILED = "provisioning_failed"
    DEAL_NOT_FOUND = "deal_not_found"
    WRITE_BACK_FAILED = "write_back_failed"
    CUSTOMER_MATCH = "customer_match"  # the ERP holds records like the customer: a person picks one (or none)
    # contract amendments
    AMENDMENT_GAP = "amendment_gap"
    OWNERSHIP_CONFLICT = "ownership_conflict"
    PROPAGATION_FAILED = "propagation_failed"
    CONTRACT_NOT_PROVISIONED = "contract_not_provisioned"
    # account ledger (invoice feedback)
    ERP_REJECTED = "erp_rejected"
    UNROUTABLE_INVOICE = "unroutable_invoice"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    INVOICE_OVERDUE = "invoice_overdue"
    PAYMENT_FAILED = "payment_failed"
    # reconciliation
    RECONCILIATION_FINDINGS = "reconciliation_findings"
    # any flow: a vendor refuses our credentials (401/403); the step retries every few minutes until a person
    # fixes the key, and the run shows this kind meanwhile
    VENDOR_AUTH_FAILED = "vendor_auth_failed"


# The ledger's kinds, most urgent first: the one its ExceptionKind attribute shows when several hold.
LEDGER_EXCEPTION_KINDS: tuple[ExceptionKind, ...] = (
    ExceptionKind.CUSTOMER_NOT_FOUND, ExceptionKind.UNROUTABLE_INVOICE, ExceptionKind.ERP_REJECTED,
    ExceptionKind.WRITE_BACK_FAILED, ExceptionKind.INVOICE_OVERDUE, ExceptionKind.PAYMENT_FAILED,
)


def most_urgent(kinds: Iterable[ExceptionKind], precedence: Sequence[ExceptionKind]) -> ExceptionKind:
    """The kind to show when several hold: the first of ``precedence`` among ``kinds`` (``NONE`` if none is).

    For a workflow with several open problems at once (the ledger's book: ``LEDGER_EXCEPTION_KINDS``).
    """
    held = set(kinds)
    return next((kind for kind in precedence if kind in held), ExceptionKind.NONE)
