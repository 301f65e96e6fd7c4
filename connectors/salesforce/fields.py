"""Salesforce's rows of the field mapping (``make docs``), from the tables its mapper uses."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, rows, table_rows
from connectors.salesforce import mapping as salesforce_mapping

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH


FIELDS: list[FieldMapping] = [
    *rows("salesforce", "Opportunity", "deal", _IN, [
        ("Deal.crm_id", "Id", "18-character form (a 15-character ID is normalised)"),
        ("Deal.write_backs", "Revops_*__c write-back fields",
         "every write-back read back, by field (the provisioning record from JSON)"),
    ]),
    *table_rows("salesforce", "Opportunity", "deal", _IN, salesforce_mapping.OPPORTUNITY_FIELDS),
    *rows("salesforce", "Account", "account", _BOTH, [("Account.crm_id", "Id", "18-character form")]),
    *table_rows("salesforce", "Account", "account", _BOTH, salesforce_mapping.ACCOUNT_FIELDS),
    *table_rows("salesforce", "OpportunityContactRole", "contact", _IN, salesforce_mapping.CONTACT_ROLE_FIELDS),
    *rows("salesforce", "OpportunityLineItem", "deal", _IN, [("DealLine.crm_id", "Id", "18-character form")]),
    *table_rows("salesforce", "OpportunityLineItem", "deal", _IN, salesforce_mapping.LINE_ITEM_FIELDS),
    *[FieldMapping(vendor="salesforce", vendor_object="Opportunity", canonical=f"DealWriteBack.{field}",
                   vendor_field=name, direction=_OUT, entity="deal", transform="text; only fields set are sent",
                   from_table=True)
      for field, name in salesforce_mapping.WRITEBACK_FIELDS.items()],
    *[FieldMapping(vendor="salesforce", vendor_object="Account", canonical=f"AccountFigures.{field}",
                   vendor_field=salesforce_mapping.figure_field(field, "<CUR>"), direction=_OUT,
                   entity="account", transform="decimal text per currency (billing_figures)", from_table=True)
      for field in salesforce_mapping.FIGURE_FIELDS],
]


__all__ = ["FIELDS"]
