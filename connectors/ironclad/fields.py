"""Ironclad's rows of the field mapping (``make docs``), from its term keys."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, rows
from connectors.ironclad import mapping as ironclad_mapping

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH


_IRONCLAD_TERM_TRANSFORMS = {
    "start_date": "date `YYYY-MM-DDT00:00:00Z`", "end_date": "date `YYYY-MM-DDT00:00:00Z`",
    "total_value": "monetary amount {currency, amount}", "fixed_fee": "monetary amount {currency, amount}",
    "billing_model": "enum value", "payment_terms_days": "integer", "budget_hours": "decimal text",
}

FIELDS: list[FieldMapping] = [
    *[FieldMapping(vendor="ironclad", vendor_object="workflow attributes / record properties",
                   canonical=f"ContractTerms.{field}", vendor_field=key, direction=_BOTH, entity="contract",
                   transform=_IRONCLAD_TERM_TRANSFORMS.get(field, "JSON text of a list (camelCase keys)"),
                   from_table=True)
      for field, key in ironclad_mapping.TERM_KEYS.items()],
    *rows("ironclad", "workflow / record", "contract", _BOTH, [
        ("Contract.counterparty", "counterpartyName", "text (Account.name)"),
        ("Contract.title", "contractTitle", "text"),
        ("Contract.deal_crm_id", "revopsDealId", "text"),
        ("Contract.clm_workflow_id", "id", "workflow ID"),
        ("Contract.executed_on", ironclad_mapping.AGREEMENT_DATE, "date (record only)"),
    ]),
    *rows("ironclad", "workflow attributes", "contract", _OUT, [
        ("ContractRequest.legal_entity", "revopsLegalEntity", "text"),
        ("ContractRequest.signer", "counterpartySignerName", "full name"),
        ("ContractRequest.signer", "counterpartySignerEmail", "email"),
    ]),
    *rows("ironclad", "amendment record", "amendment", _IN, [
        ("Amendment.sequence", ironclad_mapping.AMENDMENT_NUMBER, "integer"),
        ("Amendment.executed_on", ironclad_mapping.AGREEMENT_DATE, "date"),
        ("Amendment.contract_record_id", "parentId", "the contract record"),
    ]),
]


__all__ = ["FIELDS"]
