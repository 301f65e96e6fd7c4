"""HubSpot's rows of the field mapping (``make docs``), from the tables its mapper uses."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, rows, table_rows
from connectors.hubspot import mapping as hubspot_mapping

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH


FIELDS: list[FieldMapping] = [
    *rows("hubspot", "deal", "deal", _IN, [
        ("Deal.crm_id", "id", "as text"),
        ("Deal.write_backs", "revops_* write-back properties",
         "every write-back read back, by field (the provisioning record from JSON)"),
    ]),
    *table_rows("hubspot", "deal", "deal", _IN, hubspot_mapping.DEAL_FIELDS),
    *rows("hubspot", "company", "account", _BOTH, [("Account.crm_id", "id", "as text")]),
    *table_rows("hubspot", "company", "account", _BOTH, hubspot_mapping.COMPANY_FIELDS),
    *rows("hubspot", "contact", "contact", _IN, [("Contact.crm_id", "id", "as text")]),
    *table_rows("hubspot", "contact", "contact", _IN, hubspot_mapping.CONTACT_FIELDS),
    *rows("hubspot", "line_item", "deal", _IN, [("DealLine.crm_id", "id", "as text")]),
    *table_rows("hubspot", "line_item", "deal", _IN, hubspot_mapping.LINE_ITEM_FIELDS),
    *[FieldMapping(vendor="hubspot", vendor_object="deal", canonical=f"DealWriteBack.{field}", vendor_field=prop,
                   direction=_OUT, entity="deal", transform="text; only fields set are sent",
                   from_table=True)
      for field, prop in hubspot_mapping.WRITEBACK_PROPERTIES.items()],
    *[FieldMapping(vendor="hubspot", vendor_object="company", canonical=f"AccountFigures.{field}",
                   vendor_field=hubspot_mapping.figure_property(field, "<cur>"), direction=_OUT,
                   entity="account", transform="decimal text per currency (billing_figures)", from_table=True)
      for field in hubspot_mapping._FIGURE_FIELDS],
]


__all__ = ["FIELDS"]
