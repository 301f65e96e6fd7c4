"""HubSpot's standard (HubSpot-defined) properties that a fresh portal has, per object type.

Only these exist until someone creates more through the Properties API (or a ``/_sandbox`` seed
defines them, as a portal admin would in the UI). Writes to any other property are refused with
``PROPERTY_DOESNT_EXIST``, as HubSpot does.
"""

from __future__ import annotations

from typing import Any

#: object type ids and names as HubSpot accepts them in paths
OBJECT_TYPES: dict[str, str] = {
    "deals": "deals", "deal": "deals", "0-3": "deals",
    "companies": "companies", "company": "companies", "0-2": "companies",
    "contacts": "contacts", "contact": "contacts", "0-1": "contacts",
    "line_items": "line_items", "line_item": "line_items", "0-8": "line_items",
}
TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "line_items": "0-8"}

#: the default property group of each object type (custom properties go in these too)
DEFAULT_GROUPS = {
    "deals": "dealinformation",
    "companies": "companyinformation",
    "contacts": "contactinformation",
    "line_items": "lineiteminformation",
}

#: properties HubSpot maintains itself; writing them is refused (READ_ONLY_VALUE)
READ_ONLY = frozenset({"hs_object_id", "createdate", "hs_lastmodifieddate", "lastmodifieddate", "hs_createdate"})

#: what a GET returns when no ``properties`` are asked for
DEFAULT_READ = {
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "line_items": ["createdate", "hs_lastmodifieddate", "hs_object_id", "name", "price", "quantity"],
}

DEAL_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost"]
BILLING_FREQUENCIES = ["weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually",
                       "per_two_years", "per_three_years", "per_four_years", "per_five_years"]

# (name, type, fieldType, label[, options])
_Spec = tuple[str, str, str, str] | tuple[str, str, str, str, list[str]]

_STANDARD: dict[str, list[_Spec]] = {
    "deals": [
        ("dealname", "string", "text", "Deal Name"),
        ("amount", "number", "number", "Amount"),
        ("dealstage", "enumeration", "radio", "Deal Stage", DEAL_STAGES),
        ("pipeline", "enumeration", "select", "Pipeline", ["default"]),
        ("closedate", "datetime", "date", "Close Date"),
        ("deal_currency_code", "string", "text", "Currency"),
        ("dealtype", "enumeration", "radio", "Deal Type", ["newbusiness", "existingbusiness"]),
        ("description", "string", "textarea", "Deal Description"),
        ("hubspot_owner_id", "string", "text", "Deal owner"),
        ("createdate", "datetime", "date", "Create Date"),
        ("hs_lastmodifieddate", "datetime", "date", "Last Modified Date"),
        ("hs_object_id", "number", "number", "Record ID"),
    ],
    "companies": [
        ("name", "string", "text", "Company name"),
        ("domain", "string", "text", "Company Domain Name"),
        ("website", "string", "text", "Website URL"),
        ("phone", "string", "phonenumber", "Phone Number"),
        ("address", "string", "text", "Street Address"),
        ("address2", "string", "text", "Street Address 2"),
        ("city", "string", "text", "City"),
        ("state", "string", "text", "State/Region"),
        ("zip", "string", "text", "Postal Code"),
        ("country", "string", "text", "Country/Region"),
        ("createdate", "datetime", "date", "Create Date"),
        ("hs_lastmodifieddate", "datetime", "date", "Last Modified Date"),
        ("hs_object_id", "number", "number", "Record ID"),
    ],
    "contacts": [
        ("firstname", "string", "text", "First Name"),
        ("lastname", "string", "text", "Last Name"),
        ("email", "string", "text", "Email"),
        ("phone", "string", "phonenumber", "Phone Number"),
        ("company", "string", "text", "Company Name"),
        ("jobtitle", "string", "text", "Job Title"),
        ("createdate", "datetime", "date", "Create Date"),
        ("lastmodifieddate", "datetime", "date", "Last Modified Date"),
        ("hs_lastmodifieddate", "datetime", "date", "Object last modified date/time"),
        ("hs_object_id", "number", "number", "Record ID"),
    ],
    "line_items": [
        ("name", "string", "text", "Name"),
        ("hs_sku", "string", "text", "SKU"),
        ("description", "string", "textarea", "Description"),
        ("quantity", "number", "number", "Quantity"),
        ("price", "number", "number", "Unit price"),
        ("amount", "number", "number", "Net price"),
        ("hs_discount_percentage", "number", "number", "Discount Percentage"),
        ("discount", "number", "number", "Unit discount"),
        ("recurringbillingfrequency", "enumeration", "select", "Billing frequency", BILLING_FREQUENCIES),
        ("hs_recurring_billing_period", "string", "text", "Term"),
        ("hs_product_id", "number", "number", "Product ID"),
        ("createdate", "datetime", "date", "Create Date"),
        ("hs_lastmodifieddate", "datetime", "date", "Last Modified Date"),
        ("hs_object_id", "number", "number", "Record ID"),
    ],
}


def definition(object_type: str, name: str, type_: str, field_type: str, label: str, *,
               options: list[dict[str, Any]] | None = None, hubspot_defined: bool, created_at: str,
               has_unique_value: bool = False, description: str = "", group_name: str | None = None,
               ) -> dict[str, Any]:
    """A property definition in the Properties API's response shape."""
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": description,
        "groupName": group_name or DEFAULT_GROUPS[object_type],
        "options": options or [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": has_unique_value,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "formField": not hubspot_defined,
        "archived": False,
        "createdAt": created_at,
        "updatedAt": created_at,
        "modificationMetadata": {"archivable": not hubspot_defined, "readOnlyDefinition": hubspot_defined,
                                 "readOnlyValue": name in READ_ONLY},
        "dataSensitivity": "non_sensitive",
    }


def standard_definitions(object_type: str, *, created_at: str, extra_stages: list[str] | None = None
                         ) -> list[dict[str, Any]]:
    """The HubSpot-defined properties of ``object_type``."""
    result = []
    for spec in _STANDARD[object_type]:
        name, type_, field_type, label = spec[:4]
        values = list(spec[4]) if len(spec) > 4 else []  # type: ignore[misc]
        if name == "dealstage":
            values += [s for s in (extra_stages or []) if s not in values]
        options = [{"label": v, "value": v, "displayOrder": i, "hidden": False} for i, v in enumerate(values)]
        result.append(definition(object_type, name, type_, field_type, label, options=options,
                                 hubspot_defined=True, created_at=created_at))
    return result
