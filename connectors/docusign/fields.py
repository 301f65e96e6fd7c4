"""DocuSign's rows of the field mapping (``make docs``), from its tab labels and custom fields."""

from __future__ import annotations

from connectors.docusign import mapping as docusign_mapping
from connectors.fieldmap import Direction, FieldMapping, rows

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH

_TRANSFORMS = {
    "start_date": "date `YYYY-MM-DD`", "end_date": "date `YYYY-MM-DD`",
    "total_value": "`CUR 123.45` (currency code, exact decimal)",
    "fixed_fee": "`CUR 123.45` (currency code, exact decimal)",
    "billing_model": "enum value", "payment_terms_days": "integer text", "budget_hours": "decimal text",
    "billing_triggers": "JSON array of values",
}

FIELDS: list[FieldMapping] = [
    *[FieldMapping(vendor="docusign", vendor_object="envelope text tabs / form data",
                   canonical=f"ContractTerms.{field}", vendor_field=label, direction=_BOTH, entity="contract",
                   transform=_TRANSFORMS.get(field, "JSON text of a list (camelCase keys)"), from_table=True)
      for field, label in docusign_mapping.TERM_TABS.items()],
    *rows("docusign", "envelope", "contract", _BOTH, [
        ("Contract.counterparty", docusign_mapping.COUNTERPARTY_TAB, "text tab (Account.name)"),
        ("Contract.title", docusign_mapping.TITLE_FIELD, "text custom field (also the email subject)"),
        ("Contract.deal_crm_id", docusign_mapping.DEAL_FIELD, "text custom field"),
        ("Contract.clm_workflow_id", "envelopeId", "envelope ID (also the record ID once completed)"),
        ("Contract.executed_on", "completedDateTime", "date"),
    ]),
    *rows("docusign", "envelope", "contract", _OUT, [
        ("ContractRequest.legal_entity", docusign_mapping.ENTITY_FIELD, "text custom field"),
        ("ContractRequest.signer", "templateRoles[].name", "full name"),
        ("ContractRequest.signer", "templateRoles[].email", "email"),
    ]),
    *rows("docusign", "amendment envelope", "amendment", _IN, [
        ("Amendment.sequence", docusign_mapping.AMENDMENT_FIELD, "integer text custom field"),
        ("Amendment.executed_on", "completedDateTime", "date"),
        ("Amendment.contract_record_id", docusign_mapping.PARENT_FIELD, "the original envelope"),
    ]),
]


__all__ = ["FIELDS"]
