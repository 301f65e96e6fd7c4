"""The emulated org: its objects' schema (what ``describe`` answers), the records (in the kit's SQLite store),
18-character IDs, field validation and Salesforce's error shape.

Standard fields are declared per object; our managed package's custom fields (``Revops_*__c``) are installed on
Account, Opportunity and OpportunityLineItem, so any of them is accepted there (text unless declared otherwise).
Any other unknown field is refused with ``INVALID_FIELD`` as Salesforce does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.kit import Store

API_VERSION = "v60.0"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
CUSTOM_FIELD = re.compile(r"Revops_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*__c")
ORG_USER_ID = "005000000000001AAA"

_SYSTEM = {"Id": "id", "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
           "IsDeleted": "boolean", "CreatedById": "reference", "LastModifiedById": "reference"}
#: object -> key prefix, fields (name -> type), required on create, reference fields (name -> object), custom OK
OBJECTS: dict[str, dict[str, Any]] = {
    "Account": {"prefix": "001", "required": ["Name"], "custom": True, "fields": {
        "Name": "string", "Website": "url", "BillingStreet": "textarea", "BillingCity": "string",
        "BillingState": "string", "BillingPostalCode": "string", "BillingCountry": "string", "Phone": "phone",
        "OwnerId": "reference", "Revops_External_Ref__c": "string"}},
    "Contact": {"prefix": "003", "required": ["LastName"], "custom": False, "fields": {
        "FirstName": "string", "LastName": "string", "Email": "email", "Phone": "phone", "AccountId": "reference"}},
    "Opportunity": {"prefix": "006", "required": ["Name", "StageName", "CloseDate"], "custom": True, "fields": {
        "Name": "string", "StageName": "picklist", "Amount": "currency", "CurrencyIsoCode": "picklist",
        "CloseDate": "date", "AccountId": "reference", "OwnerId": "reference", "Probability": "percent",
        "Revops_Start_Date__c": "date", "Revops_End_Date__c": "date", "Revops_Payment_Terms_Days__c": "double",
        "Revops_Non_Standard_Terms__c": "boolean"}},
    "OpportunityLineItem": {"prefix": "00k", "required": ["OpportunityId", "Quantity"], "custom": True, "fields": {
        "OpportunityId": "reference", "PricebookEntryId": "reference", "Product2Id": "reference",
        "Name": "string", "ProductCode": "string", "Quantity": "double", "UnitPrice": "currency",
        "ListPrice": "currency", "TotalPrice": "currency", "Discount": "percent", "Description": "string",
        "SortOrder": "int"}},
    "OpportunityContactRole": {"prefix": "00K", "required": ["OpportunityId", "ContactId"], "custom": False,
                               "fields": {"OpportunityId": "reference", "ContactId": "reference", "Role": "picklist",
                                          "IsPrimary": "boolean"}},
    "Product2": {"prefix": "01t", "required": ["Name"], "custom": False, "fields": {
        "Name": "string", "ProductCode": "string", "IsActive": "boolean", "Family": "picklist"}},
    "Pricebook2": {"prefix": "01s", "required": ["Name"], "custom": False, "fields": {
        "Name": "string", "IsActive": "boolean", "IsStandard": "boolean"}},
    "PricebookEntry": {"prefix": "01u", "required": ["Pricebook2Id", "Product2Id", "UnitPrice"], "custom": False,
                       "fields": {"Pricebook2Id": "reference", "Product2Id": "reference", "UnitPrice": "currency",
                                  "IsActive": "boolean", "CurrencyIsoCode": "picklist", "Name": "string",
                                  "ProductCode": "string"}},
}
#: fields the org computes: refused on create and update
READ_ONLY = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "CreatedById",
             "LastModifiedById"}
#: per object, fields it derives from others (a line item's product code, name and list price)
DERIVED = {"OpportunityLineItem": {"ProductCode", "Name", "ListPrice"},
           "PricebookEntry": {"Name", "ProductCode"}}
PREFIXES = {spec["prefix"]: name for name, spec in OBJECTS.items()}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise SalesforceError(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"value not of required type: {value}") from None


def _number(value: Decimal) -> float:
    """A currency amount as Salesforce sends it: a JSON number rounded to two places."""
    return float(value.quantize(Decimal("0.01")))


class SalesforceError(Exception):
    """A refusal in Salesforce's shape: ``[{"message", "errorCode", "fields"}]`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def collection_error(self) -> dict[str, Any]:
        """The error as sObject Collections reports it per record (``statusCode``)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def checksum(id15: str) -> str:
    return "".join(_SUFFIX[sum(1 << i for i, c in enumerate(id15[s:s + 5]) if "A" <= c <= "Z")] for s in (0, 5, 10))


def to_18(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character ID, or ``None`` when it is not one."""
    if re.fullmatch(r"[a-zA-Z0-9]{15}", value):
        return value + checksum(value)
    if re.fullmatch(r"[a-zA-Z0-9]{18}", value) and value[15:].upper() == checksum(value[:15]):
        return value[:15] + value[15:].upper()
    return None


def now_text() -> str:
    """A datetime as Salesforce writes it: ``2024-05-01T10:00:00.000+0000``."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class Org:
    """The org's records and schema."""

    def __init__(self, store: Store, org_id: str) -> None:
        self.store = store
        self.org_id = org_id

    # -- schema ---------------------------------------------------------------------------------------
    def sobject(self, name: str) -> str:
        """The object's API name (case-insensitive), or 404 ``NOT_FOUND``."""
        for known in OBJECTS:
            if known.lower() == name.lower():
                return known
        raise SalesforceError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}' "
                                                "is not supported.")

    def field_type(self, sobject: str, name: str) -> str | None:
        spec = OBJECTS[sobject]
        for known, kind in {**_SYSTEM, **spec["fields"]}.items():
            if known.lower() == name.lower():
                return str(kind)
        if spec["custom"] and CUSTOM_FIELD.fullmatch(name):
            return "string"
        return None

    def field_name(self, sobject: str, name: str) -> str:
        """The field's API name as declared, or 400 ``INVALID_FIELD``."""
        for known in {**_SYSTEM, **OBJECTS[sobject]["fields"]}:
            if known.lower() == name.lower():
                return known
        if OBJECTS[sobject]["custom"] and CUSTOM_FIELD.fullmatch(name):
            return name
        raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}",
                              [name])

    # -- records ---------------------------------------------------------------------------------------
    def new_id(self, sobject: str) -> str:
        id15 = f"{OBJECTS[sobject]['prefix']}8d{self.store.next_number('sf:' + sobject):010d}"
        return id15 + checksum(id15)

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        full = to_18(record_id)
        return self.store.get(f"sf:{sobject}", full) if full else None

    def require(self, sobject: str, record_id: str) -> dict[str, Any]:
        full = to_18(record_id)
        if full is None:
            raise SalesforceError(400, "MALFORMED_ID", f"{sobject} ID: id value of incorrect type: {record_id}")
        record = self.store.get(f"sf:{sobject}", full)
        if record is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return record

    def find_by_id(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """Any record by its ID (the key prefix names its object)."""
        sobject = PREFIXES.get(record_id[:3])
        record = self.get(sobject, record_id) if sobject else None
        return (sobject, record) if sobject and record else None

    def all(self, sobject: str) -> list[dict[str, Any]]:
        return self.store.list(f"sf:{sobject}")

    def clean(self, sobject: str, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """``values`` with API field names, checked for unknown, read-only and (on create) missing fields."""
        cleaned: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            known = self.field_name(sobject, name)
            if known in READ_ONLY or known in DERIVED.get(sobject, ()) or (known == "Id" and creating):
                raise SalesforceError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                      f"Unable to create/update fields: {known}. Please check the security settings "
                                      "of this field and verify that it is read/write for your profile.", [known])
            kind = self.field_type(sobject, known)
            if kind == "reference" and value is not None:
                full = to_18(str(value))
                if full is None or (known != "OwnerId" and self.find_by_id(full) is None):
                    raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY",
                                          "invalid cross reference id", [known])
                value = full
            cleaned[known] = value
        if creating:
            missing = [f for f in OBJECTS[sobject]["required"] if cleaned.get(f) in (None, "")]
            if sobject == "OpportunityLineItem" and not (cleaned.get("PricebookEntryId") or cleaned.get("Product2Id")):
                missing.append("PricebookEntryId")
            if missing:
                raise SalesforceError(400, "REQUIRED_FIELD_MISSING",
                                      f"Required fields are missing: [{', '.join(missing)}]", missing)
        return cleaned

    def create(self, sobject: str, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = self.clean(sobject, values, creating=True)
        stamp = now_text()
        record = {"Id": self.new_id(sobject), "CreatedDate": stamp, "LastModifiedDate": stamp,
                  "SystemModstamp": stamp, "IsDeleted": False, "CreatedById": ORG_USER_ID,
                  "LastModifiedById": ORG_USER_ID, **cleaned}
        if sobject in ("Account", "Opportunity"):
            record.setdefault("OwnerId", ORG_USER_ID)
        self._derive(sobject, record)
        self.store.put(f"sf:{sobject}", record["Id"], record)
        if sobject == "OpportunityLineItem":
            self.roll_up(record["OpportunityId"])
        return record

    def update(self, sobject: str, record_id: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The record after the update and the fields whose value changed."""
        record = self.require(sobject, record_id)
        cleaned = self.clean(sobject, values, creating=False)
        changed = {k: v for k, v in cleaned.items() if record.get(k) != v}
        record.update(cleaned)
        stamp = now_text()
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        self._derive(sobject, record)
        self.store.put(f"sf:{sobject}", record["Id"], record)
        if sobject == "OpportunityLineItem":
            self.roll_up(record["OpportunityId"])
        return record, changed

    def delete(self, sobject: str, record_id: str) -> None:
        record = self.require(sobject, record_id)
        self.store.delete(f"sf:{sobject}", record["Id"])
        if sobject == "OpportunityLineItem":
            self.roll_up(record["OpportunityId"])

    def _derive(self, sobject: str, record: dict[str, Any]) -> None:
        """What the org computes: a line item's product code, name and list price from its price book entry."""
        if sobject != "OpportunityLineItem":
            return
        entry = self.get("PricebookEntry", record["PricebookEntryId"]) if record.get("PricebookEntryId") else None
        product_id = (entry or {}).get("Product2Id") or record.get("Product2Id")
        product = self.get("Product2", product_id) if product_id else None
        if product:
            opportunity = self.get("Opportunity", record["OpportunityId"]) or {}
            record["Product2Id"] = product["Id"]
            record["ProductCode"] = product.get("ProductCode")
            record["Name"] = f"{opportunity.get('Name', '')} {product.get('Name', '')}".strip()
        quantity, discount = _decimal(record.get("Quantity")), _decimal(record.get("Discount"))
        if record.get("UnitPrice") is None and record.get("TotalPrice") is not None and quantity:
            # a line may be given its total instead of its sales price (never both)
            record["UnitPrice"] = _number(_decimal(record["TotalPrice"]) / quantity / (1 - discount / 100))
        if entry:
            record["ListPrice"] = entry.get("UnitPrice")
            record.setdefault("UnitPrice", entry.get("UnitPrice"))
        record["TotalPrice"] = _number(_decimal(record.get("Quantity")) * _decimal(record.get("UnitPrice"))
                                       * (1 - _decimal(record.get("Discount")) / 100))

    def roll_up(self, opportunity_id: str) -> None:
        """An opportunity with products has the sum of its lines' total prices as its Amount."""
        opportunity = self.get("Opportunity", opportunity_id)
        lines = self.store.list("sf:OpportunityLineItem", where=lambda r: r.get("OpportunityId") == opportunity_id)
        if opportunity is None or not lines:
            return
        opportunity["Amount"] = _number(sum((_decimal(line.get("TotalPrice")) for line in lines), Decimal(0)))
        opportunity["LastModifiedDate"] = opportunity["SystemModstamp"] = now_text()
        self.store.put("sf:Opportunity", opportunity["Id"], opportunity)

    def by_external_id(self, sobject: str, field: str, value: str) -> list[dict[str, Any]]:
        return self.store.list(f"sf:{sobject}", where=lambda r: r.get(field) == value)

    def resolve(self, sobject: str, record: dict[str, Any], path: str) -> Any:
        """A field or relationship path (``PricebookEntry.Product2.Name``) of a record; ``INVALID_FIELD`` when the
        object has no such field."""
        head, _, rest = path.partition(".")
        if not rest:
            return record.get(self.field_name(sobject, head))
        reference = self.field_name(sobject, f"{head}Id")
        target_id = record.get(reference)
        found = self.find_by_id(str(target_id)) if target_id else None
        return self.resolve(found[0], found[1], rest) if found else None

    def path_type(self, sobject: str, path: str) -> str | None:
        """The type of a field or relationship path's last field (``Contact.AccountId`` -> reference)."""
        head, _, rest = path.partition(".")
        if not rest:
            return self.field_type(sobject, head)
        kind = self.field_type(sobject, f"{head}Id")
        target = {"Owner": None, "CreatedBy": None, "LastModifiedBy": None}.get(head, head)
        if kind != "reference" or target is None:
            return None
        try:
            return self.path_type(self.sobject(target), rest)
        except SalesforceError:
            return None

    def url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/{API_VERSION}/sobjects/{sobject}/{record_id}"

    def render(self, sobject: str, record: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
        """A record as the REST API returns it: ``attributes`` first, then the fields (all, or those asked)."""
        body: dict[str, Any] = {"attributes": {"type": sobject, "url": self.url(sobject, record["Id"])}}
        if fields is None:
            names = [*_SYSTEM, *OBJECTS[sobject]["fields"]]
            names += [k for k in record if k not in names]
            body.update({n: record.get(n) for n in names})
            return body
        for path in fields:
            self._render_path(sobject, record, path, body)
        return body

    def _render_path(self, sobject: str, record: dict[str, Any], path: str, body: dict[str, Any]) -> None:
        head, _, rest = path.partition(".")
        if not rest:
            name = self.field_name(sobject, head)
            body[name] = record.get(name)
            return
        reference = self.field_name(sobject, f"{head}Id")
        found = self.find_by_id(str(record[reference])) if record.get(reference) else None
        if found is None:
            body[head] = None
            return
        target, related = found
        nested = body.get(head) or {"attributes": {"type": target, "url": self.url(target, related["Id"])}}
        self._render_path(target, related, rest, nested)
        body[head] = nested
