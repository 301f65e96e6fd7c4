"""The field mapping per object and vendor, as data: canonical field <-> vendor field, direction, owner system
and transform. ``make docs`` renders it into ``docs/field-mapping.md``.

Rows come from the tables the mappers use where they have one: HubSpot's property tables (``DEAL_FIELDS``,
``COMPANY_FIELDS``, ``CONTACT_FIELDS``, ``LINE_ITEM_FIELDS``: its reads ask for exactly those properties), its
``WRITEBACK_PROPERTIES`` and figure properties, Ironclad's ``TERM_KEYS``, Stripe's metadata keys. The rest
(Stripe's and Xero's mapping functions are code) are declared here, and ``tests/observability/test_docs.py``
holds them to the code: every vendor field is named in that vendor's connector and every canonical field exists
on its model. The owner is the system of record from :func:`canonical.ownership.owner_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from canonical.ownership import SystemRole, owner_of
from canonical.requests import DealWriteBack
from connectors.hubspot import mapping as hubspot_mapping
from connectors.ironclad import mapping as ironclad_mapping
from connectors.stripe import mapping as stripe_mapping

NOT_MAPPED = "-"


class Direction(StrEnum):
    IN = "vendor → canonical"
    OUT = "canonical → vendor"
    BOTH = "both ways"


@dataclass(frozen=True)
class FieldMapping:
    """One row: ``canonical`` is ``Model.field``; ``entity`` names it for ownership (account, deal, ...)."""

    vendor: str
    vendor_object: str
    canonical: str
    vendor_field: str
    direction: Direction
    entity: str
    transform: str = "as is"
    from_table: bool = False  # generated from a table the mapper itself uses

    @property
    def model(self) -> str:
        return self.canonical.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.canonical.split(".", 1)[1]

    @property
    def owner(self) -> SystemRole:
        if self.canonical == NOT_MAPPED:
            return owner_of(self.entity, "-")
        return owner_of(self.entity, self.field.split(".")[0])


def _rows(vendor: str, vendor_object: str, entity: str, direction: Direction,
          rows: list[tuple[str, str, str]]) -> list[FieldMapping]:
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=c, vendor_field=v, direction=direction,
                         entity=entity, transform=t) for c, v, t in rows]


_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH

def _hubspot_table(vendor_object: str, entity: str, direction: Direction, table: dict[str, tuple[str, str]]
                   ) -> list[FieldMapping]:
    """Rows from one of the HubSpot mapper's property tables (the reads ask for exactly those properties)."""
    return [FieldMapping(vendor="hubspot", vendor_object=vendor_object, canonical=canonical_field, vendor_field=prop,
                         direction=direction, entity=entity, transform=transform, from_table=True)
            for prop, (canonical_field, transform) in table.items()]


HUBSPOT: list[FieldMapping] = [
    *_rows("hubspot", "deal", "deal", _IN, [
        ("Deal.crm_id", "id", "as text"),
        ("Deal.write_backs", "revops_* write-back properties",
         "every write-back read back, by field (the provisioning record from JSON)"),
    ]),
    *_hubspot_table("deal", "deal", _IN, hubspot_mapping.DEAL_FIELDS),
    *_rows("hubspot", "company", "account", _BOTH, [("Account.crm_id", "id", "as text")]),
    *_hubspot_table("company", "account", _BOTH, hubspot_mapping.COMPANY_FIELDS),
    *_rows("hubspot", "contact", "contact", _IN, [("Contact.crm_id", "id", "as text")]),
    *_hubspot_table("contact", "contact", _IN, hubspot_mapping.CONTACT_FIELDS),
    *_rows("hubspot", "line_item", "deal", _IN, [("DealLine.crm_id", "id", "as text")]),
    *_hubspot_table("line_item", "deal", _IN, hubspot_mapping.LINE_ITEM_FIELDS),
    *[FieldMapping(vendor="hubspot", vendor_object="deal", canonical=f"DealWriteBack.{field}", vendor_field=prop,
                   direction=_OUT, entity="deal", transform="text; only fields set are sent",
                   from_table=True)
      for field, prop in hubspot_mapping.WRITEBACK_PROPERTIES.items()],
    *[FieldMapping(vendor="hubspot", vendor_object="company", canonical=f"AccountFigures.{field}",
                   vendor_field=hubspot_mapping.figure_property(field, "<cur>"), direction=_OUT,
                   entity="account", transform="decimal text per currency (billing_figures)", from_table=True)
      for field in hubspot_mapping._FIGURE_FIELDS],
]

_IRONCLAD_TERM_TRANSFORMS = {
    "start_date": "date `YYYY-MM-DDT00:00:00Z`", "end_date": "date `YYYY-MM-DDT00:00:00Z`",
    "total_value": "monetary amount {currency, amount}", "fixed_fee": "monetary amount {currency, amount}",
    "billing_model": "enum value", "payment_terms_days": "integer", "budget_hours": "decimal text",
}

IRONCLAD: list[FieldMapping] = [
    *[FieldMapping(vendor="ironclad", vendor_object="workflow attributes / record properties",
                   canonical=f"ContractTerms.{field}", vendor_field=key, direction=_BOTH, entity="contract",
                   transform=_IRONCLAD_TERM_TRANSFORMS.get(field, "JSON text of a list (camelCase keys)"),
                   from_table=True)
      for field, key in ironclad_mapping.TERM_KEYS.items()],
    *_rows("ironclad", "workflow / record", "contract", _BOTH, [
        ("Contract.counterparty", "counterpartyName", "text (Account.name)"),
        ("Contract.title", "contractTitle", "text"),
        ("Contract.deal_crm_id", "revopsDealId", "text"),
        ("Contract.clm_workflow_id", "id", "workflow ID"),
        ("Contract.executed_on", ironclad_mapping.AGREEMENT_DATE, "date (record only)"),
    ]),
    *_rows("ironclad", "workflow attributes", "contract", _OUT, [
        ("ContractRequest.legal_entity", "revopsLegalEntity", "text"),
        ("ContractRequest.signer", "counterpartySignerName", "full name"),
        ("ContractRequest.signer", "counterpartySignerEmail", "email"),
    ]),
    *_rows("ironclad", "amendment record", "amendment", _IN, [
        ("Amendment.sequence", ironclad_mapping.AMENDMENT_NUMBER, "integer"),
        ("Amendment.executed_on", ironclad_mapping.AGREEMENT_DATE, "date"),
        ("Amendment.contract_record_id", "parentId", "the contract record"),
    ]),
]

STRIPE: list[FieldMapping] = [
    *_rows("stripe", "customer", "account", _OUT, [
        ("Account.name", "name", "text"),
        ("Contact.email", "email", "the billing contact's"),
        ("Contact.phone", "phone", "the billing contact's"),
        ("Account.address", "address", "line1/line2/city/state/postal_code/country"),
        ("Account.crm_id", "metadata.crm_company_id", "text"),
        ("BillingCustomer.legal_entity", f"metadata.{stripe_mapping.ENTITY_KEY}", "entity code"),
        ("Account.billing_customer_id", "id", "look-up by metadata reference first"),
    ]),
    FieldMapping(vendor="stripe", vendor_object="customer", canonical="Account.crm_id",
                 vendor_field=f"metadata.{stripe_mapping.REF_KEY}", direction=_OUT, entity="account",
                 transform="our reference `hubspot-company-<id>-<entity>` (search key)"),
    *_rows("stripe", "invoice", "invoice", _IN, [
        ("Invoice.billing_id", "id", "as is"),
        ("Invoice.number", "number", "as is"),
        ("Invoice.customer_id", "customer", "ID of an expanded or bare reference"),
        ("Invoice.currency", "currency", "upper-cased"),
        ("Invoice.status", "status", "draft/open/paid/void/uncollectible"),
        ("Invoice.issued_on", "status_transitions.finalized_at", "epoch seconds → date (UTC)"),
        ("Invoice.due_on", "due_date", "epoch seconds → date (UTC)"),
        ("Invoice.subtotal", "subtotal", "minor units → Decimal in the currency"),
        ("Invoice.tax", "tax", "minor units; sum of total_tax_amounts when absent"),
        ("Invoice.total", "total", "minor units → Decimal"),
        ("Invoice.amount_paid", "amount_paid", "minor units → Decimal"),
        ("Invoice.amount_due", "amount_remaining", "minor units → Decimal (still owed)"),
        ("Invoice.lines", "lines.data", "quantity, unit amount, tax amounts, product code"),
        ("Invoice.metadata", "metadata", "invoice metadata over the subscription's"),
    ]),
    *[FieldMapping(vendor="stripe", vendor_object="invoice", canonical="Invoice.crm_deal_id",
                   vendor_field=f"metadata.{key}", direction=_IN, entity="invoice", transform="first present")
      for key in stripe_mapping.DEAL_KEYS],
    *[FieldMapping(vendor="stripe", vendor_object="invoice", canonical="Invoice.legal_entity",
                   vendor_field=f"metadata.{key}", direction=_IN, entity="invoice", transform="first present")
      for key in stripe_mapping.ENTITY_KEYS],
    FieldMapping(vendor="stripe", vendor_object="subscription / invoice item", canonical="Project.code",
                 vendor_field=f"metadata.{stripe_mapping.PROJECT_KEY}", direction=_OUT, entity="project",
                 transform="our project code"),
    *_rows("stripe", "credit note", "credit_note", _BOTH, [
        ("CreditNote.billing_id", "id", "as is"),
        ("CreditNote.invoice_billing_id", "invoice", "ID"),
        ("CreditNote.amount", "amount", "minor units ↔ Decimal"),
        ("CreditNote.reason", "reason", "one of Stripe's reasons, else in the memo"),
    ]),
]

XERO: list[FieldMapping] = [
    *_rows("xero", "contact", "account", _BOTH, [
        ("Account.name", "Name", "text"),
        ("Account.address", "Addresses", "POBOX address ↔ Address"),
        ("Account.tax_number", "TaxNumber", "text"),
        ("Account.payment_terms_days", "PaymentTerms", "Sales DAYSAFTERBILLDATE ↔ days"),
        ("Account.erp_contact_id", "ContactID", "as is"),
    ]),
    *_rows("xero", "contact", "account", _OUT, [
        ("Account.crm_id", "ContactNumber", "our reference `hubspot-company-<id>-<entity>` (look-up key)"),
        ("Contact.email", "EmailAddress", "the billing contact's"),
        ("Contact.first_name", "FirstName", "the billing contact's"),
        ("Contact.last_name", "LastName", "the billing contact's"),
    ]),
    *_rows("xero", "project", "project", _BOTH, [
        ("Project.name", "name", "`[<code>] <name>`, 100 characters at most"),
        ("Project.code", "name", "the `[<code>]` prefix of the name (Xero has no external reference)"),
        ("Project.budget", "estimateAmount", "amount in the tenant's currency"),
        ("Project.deadline", "deadlineUtc", "date → midnight UTC"),
        ("Project.erp_contact_id", "contactId", "as is"),
        ("Project.erp_id", "projectId", "as is"),
    ]),
    *_rows("xero", "project task", "project", _BOTH, [
        ("ProjectTask.name", "name", "text"),
        ("ProjectTask.rate", "rate", "{currency, value}"),
        ("ProjectTask.charge_type", "chargeType", "TIME/FIXED/NON_CHARGEABLE ↔ enum"),
        ("ProjectTask.estimate_minutes", "estimateMinutes", "integer"),
    ]),
    *_rows("xero", "ACCREC invoice", "invoice", _BOTH, [
        ("Invoice.billing_id", "Reference", "the billing invoice ID (look-up key)"),
        ("Invoice.number", "InvoiceNumber", "as is"),
        ("Invoice.currency", "CurrencyCode", "ISO 4217"),
        ("Invoice.issued_on", "Date", "ISO date"),
        ("Invoice.due_on", "DueDate", "ISO date"),
        ("Invoice.lines", "LineItems", "Description, Quantity, UnitAmount, AccountCode, TaxType, TaxAmount"),
        ("Invoice.status", "Status", "AUTHORISED/PAID/VOIDED ↔ open/paid/void"),
    ]),
    *_rows("xero", "payment", "payment", _OUT, [
        ("Payment.billing_id", "Reference", "the billing payment ID (look-up key)"),
        ("Payment.amount", "Amount", "Decimal"),
    ]),
    *_rows("xero", "ACCRECCREDIT credit note", "credit_note", _OUT, [
        ("CreditNote.billing_id", "Reference", "the billing credit note ID (look-up key)"),
    ]),
]

FIELD_MAPPINGS: dict[str, list[FieldMapping]] = {"hubspot": HUBSPOT, "ironclad": IRONCLAD, "stripe": STRIPE,
                                                 "xero": XERO}


def writeback_fields() -> list[str]:
    """Every ``DealWriteBack`` field (each has a HubSpot row, generated from the mapper's table)."""
    return list(DealWriteBack.model_fields)


__all__ = ["FIELD_MAPPINGS", "NOT_MAPPED", "Direction", "FieldMapping", "writeback_fields"]
