"""The emulated HubSpot portal's state: property definitions, CRM objects and associations.

Everything lives in the kit's :class:`~sandbox.kit.Store` as HubSpot's own JSON. Objects are
``{"id", "properties", "createdAt", "updatedAt", "archived"}``; properties are strings, as on the
wire. Refusals raise :class:`HubSpotError`, which the app renders in HubSpot's error shape.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.hubspot.properties import (
    DEFAULT_GROUPS,
    DEFAULT_READ,
    OBJECT_TYPES,
    READ_ONLY,
    TYPE_IDS,
    definition,
    standard_definitions,
)
from sandbox.kit import Store

PORTAL_ID = 62515
APP_ID = 54321
SINGULAR = {"deals": "deal", "companies": "company", "contacts": "contact", "line_items": "line_item"}

# HUBSPOT_DEFINED association types: (from, to) -> [(typeId, v3 type name, label)], primary first
ASSOCIATION_TYPES: dict[tuple[str, str], list[tuple[int, str, str | None]]] = {
    ("deals", "companies"): [(5, "deal_to_company", "Primary"), (341, "deal_to_company_unlabeled", None)],
    ("companies", "deals"): [(6, "company_to_deal", "Primary"), (342, "company_to_deal_unlabeled", None)],
    ("deals", "contacts"): [(3, "deal_to_contact", None)],
    ("contacts", "deals"): [(4, "contact_to_deal", None)],
    ("deals", "line_items"): [(19, "deal_to_line_item", None)],
    ("line_items", "deals"): [(20, "line_item_to_deal", None)],
    ("companies", "contacts"): [(280, "company_to_contact", None)],
    ("contacts", "companies"): [(279, "contact_to_company", None)],
}

MAX_BATCH = 100
MAX_SEARCH_LIMIT = 200
MAX_SEARCH_RESULTS = 10_000


class HubSpotError(Exception):
    """A refusal, rendered as ``{"status": "error", "message", "correlationId", "category", ...}``."""

    def __init__(self, status: int, message: str, category: str, *, errors: list[dict[str, Any]] | None = None,
                 context: dict[str, list[str]] | None = None, sub_category: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category
        self.errors, self.context, self.sub_category = errors, context, sub_category

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": str(uuid.uuid4()),
                                "category": self.category}
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        return body


def now_iso() -> str:
    """HubSpot's timestamp format: ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_millis(value: str | None) -> int | None:
    """A date, datetime or epoch-millisecond string as epoch milliseconds (``None`` if not one)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(parsed.timestamp() * 1000)


def object_type(raw: str) -> str:
    """The canonical object type name for a path segment (``deals``, ``0-3``...)."""
    name = OBJECT_TYPES.get(raw.lower())
    if name is None:
        raise HubSpotError(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")
    return name


def _invalid_property(name: str, message: str, code: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name,
            "localizedErrorMessage": message, "portalId": PORTAL_ID}


class Portal:
    """One HubSpot account (portal) on top of the sandbox store."""

    def __init__(self, store: Store, *, extra_stages: list[str] | None = None) -> None:
        self.store = store
        self.extra_stages = extra_stages or []

    # -- properties ------------------------------------------------------------------------------
    def _ensure_standard(self) -> None:
        # The store may have been reset through /_sandbox/reset: seed again when the marker is gone.
        if self.store.get("hs:meta", "standard-properties") is not None:
            return
        with self.store.lock:
            if self.store.get("hs:meta", "standard-properties") is not None:
                return
            stamp = now_iso()
            for type_name in DEFAULT_GROUPS:
                for prop in standard_definitions(type_name, created_at=stamp, extra_stages=self.extra_stages):
                    self.store.put(f"hs:property:{type_name}", prop["name"], prop)
            self.store.put("hs:meta", "standard-properties", {"at": stamp})

    def properties(self, type_name: str) -> dict[str, dict[str, Any]]:
        """All definitions of an object type by name."""
        self._ensure_standard()
        return {p["name"]: p for p in self.store.list(f"hs:property:{type_name}")}

    def create_property(self, type_name: str, body: dict[str, Any], *, hubspot_defined: bool = False
                        ) -> dict[str, Any]:
        """``POST /crm/v3/properties/{objectType}``: 409 when the name is taken."""
        self._ensure_standard()
        missing = [f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)]
        if missing:
            raise HubSpotError(400, f"Invalid input: missing required field(s) {', '.join(missing)}",
                               "VALIDATION_ERROR",
                               errors=[{"message": f"{f} is required", "in": f} for f in missing])
        name = str(body["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise HubSpotError(400, f"Property name '{name}' is invalid: use lowercase letters, digits and _",
                               "VALIDATION_ERROR")
        if body["groupName"] != DEFAULT_GROUPS[type_name]:
            raise HubSpotError(400, f"Property group '{body['groupName']}' does not exist", "VALIDATION_ERROR")
        if self.store.get(f"hs:property:{type_name}", name) is not None:
            raise HubSpotError(409, f"A property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                               context={"name": [name]})
        options = [{"label": o.get("label", o.get("value")), "value": o["value"],
                    "displayOrder": o.get("displayOrder", i), "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {})}
                   for i, o in enumerate(body.get("options") or [])]
        if body["type"] == "enumeration" and not options:
            raise HubSpotError(400, "Options are required for enumeration properties", "VALIDATION_ERROR")
        prop = definition(type_name, name, str(body["type"]), str(body["fieldType"]), str(body["label"]),
                          options=options, hubspot_defined=hubspot_defined, created_at=now_iso(),
                          has_unique_value=bool(body.get("hasUniqueValue", False)),
                          description=str(body.get("description") or ""), group_name=str(body["groupName"]))
        return self.store.put(f"hs:property:{type_name}", name, prop)

    def define_if_missing(self, type_name: str, names: Iterable[str]) -> None:
        """A portal admin created these custom properties in the UI (plain text; used by seeding)."""
        known = self.properties(type_name)
        for name in names:
            if name not in known:
                self.create_property(type_name, {"name": name, "label": name, "type": "string",
                                                 "fieldType": "text", "groupName": DEFAULT_GROUPS[type_name]})

    def validate(self, type_name: str, values: dict[str, Any], *, exclude_id: str | None = None) -> None:
        """Refuse unknown, read-only or ill-typed property values the way HubSpot does."""
        known = self.properties(type_name)
        problems: list[dict[str, Any]] = []
        for name, value in values.items():
            prop = known.get(name)
            if prop is None:
                problems.append(_invalid_property(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
                continue
            if name in READ_ONLY:
                problems.append(_invalid_property(name, f'"{name}" is a read only property; its value cannot be set.',
                                                  "READ_ONLY_VALUE"))
                continue
            if value is None or value == "":
                continue  # an empty value clears the property
            if not isinstance(value, str | int | float | bool):
                problems.append(_invalid_property(name, f"{json.dumps(value)} is not a valid value", "INVALID_VALUE"))
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            problem = _type_problem(prop, text)
            if problem:
                problems.append(_invalid_property(name, *problem))
        if problems:
            raise HubSpotError(400, "Property values were not valid: " + json.dumps(problems, separators=(",", ":")),
                               "VALIDATION_ERROR",
                               errors=[{"message": p["message"], "code": p["error"],
                                        "context": {"propertyName": [p["name"]]}} for p in problems])
        for name, value in values.items():
            if known[name]["hasUniqueValue"] and value not in (None, ""):
                existing = self.find_by(type_name, name, str(value))
                if existing is not None and existing["id"] != exclude_id:
                    raise HubSpotError(
                        409, f"A {SINGULAR[type_name]} with {name} {value!s} already exists. "
                             f"Existing ID: {existing['id']}", "OBJECT_ALREADY_EXISTS",
                        errors=[{"message": f"{value} already has that value.", "in": name}])

    # -- objects ---------------------------------------------------------------------------------
    def get(self, type_name: str, object_id: str) -> dict[str, Any] | None:
        return self.store.get(f"hs:{type_name}", object_id)

    def require(self, type_name: str, object_id: str) -> dict[str, Any]:
        found = self.get(type_name, object_id)
        if found is None or found.get("archived"):
            raise HubSpotError(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                               context={"id": [object_id]})
        return found

    def find_by(self, type_name: str, prop: str, value: str) -> dict[str, Any] | None:
        if prop in ("hs_object_id", "id"):
            return self.get(type_name, value)
        # through the store's index (a look-up by a unique property does not scan every object), then exactly
        matches = self.store.list_equal(f"hs:{type_name}", f"properties.{prop}", {value.lower()},
                                        where=lambda o: o["properties"].get(prop) == value)
        return matches[0] if matches else None

    def all(self, type_name: str, *, where: Callable[[dict[str, Any]], bool] | None = None, offset: int = 0,
            limit: int | None = None) -> list[dict[str, Any]]:
        """Live (not archived) objects in creation order; ``where`` sees each read-only."""
        return self.store.list(f"hs:{type_name}", where=lambda o: not o.get("archived") and (where is None or where(o)),
                               offset=offset, limit=limit)

    def create(self, type_name: str, values: dict[str, Any], *, validate: bool = True) -> dict[str, Any]:
        if validate:
            self.validate(type_name, values)
        object_id = str(10_000_000 + self.store.next_number("hs:object-id"))
        stamp = now_iso()
        props = {k: _as_text(v) for k, v in values.items() if v is not None}
        props.update({"hs_object_id": object_id, "createdate": stamp, "hs_lastmodifieddate": stamp})
        if type_name == "contacts":
            props["lastmodifieddate"] = stamp
        _derive(type_name, props)
        record = {"id": object_id, "properties": props, "createdAt": stamp, "updatedAt": stamp, "archived": False}
        return self.store.put(f"hs:{type_name}", object_id, record)

    def update(self, type_name: str, object_id: str, values: dict[str, Any], *, validate: bool = True
               ) -> tuple[dict[str, Any], dict[str, str]]:
        """Apply ``values``; returns the object and the properties whose value changed."""
        record = self.require(type_name, object_id)
        if validate:
            self.validate(type_name, values, exclude_id=object_id)
        props = record["properties"]
        changed: dict[str, str] = {}
        for name, value in values.items():
            text = _as_text(value) if value is not None else ""
            if props.get(name, "") != text:
                changed[name] = text
            if text == "":
                props.pop(name, None)
            else:
                props[name] = text
        if changed:
            stamp = now_iso()
            props["hs_lastmodifieddate"] = stamp
            if type_name == "contacts":
                props["lastmodifieddate"] = stamp
            record["updatedAt"] = stamp
            _derive(type_name, props)
            self.store.put(f"hs:{type_name}", object_id, record)
        return record, changed

    def archive(self, type_name: str, object_id: str) -> None:
        """Move to the recycling bin (HubSpot's archive): reads give 404 unless ``archived=true``."""
        record = self.require(type_name, object_id)
        stamp = now_iso()
        record.update(archived=True, archivedAt=stamp, updatedAt=stamp)
        self.store.put(f"hs:{type_name}", object_id, record)

    # -- associations ----------------------------------------------------------------------------
    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Both directions, with HubSpot's default (and primary, where it has one) types."""
        for (a, a_id, b, b_id) in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
            specs = ASSOCIATION_TYPES.get((a, b))
            if not specs:
                raise HubSpotError(400, f"No association type between {a} and {b}", "VALIDATION_ERROR")
            # The source ID goes in the (indexed) tenant column so /_sandbox/counts stays one kind per pair.
            self.store.put(f"hs:assoc:{a}:{b}", b_id,
                           {"toObjectId": b_id, "types": [[t, n, label] for t, n, label in specs]}, tenant=a_id)

    def associations(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, Any]]:
        """``[{"toObjectId", "types": [[typeId, v3name, label], ...]}]`` in creation order."""
        return self.store.list(f"hs:assoc:{from_type}:{to_type}", tenant=from_id)

    # -- rendering -------------------------------------------------------------------------------
    def render(self, type_name: str, record: dict[str, Any], properties: list[str] | None, *,
               always: Iterable[str] = ()) -> dict[str, Any]:
        """The public object: only asked-for properties that have a value (the spec has no nulls)."""
        wanted = list(properties) if properties else DEFAULT_READ[type_name]
        props = record["properties"]
        shown = {n: props[n] for n in [*wanted, *always] if n in props}
        shown_record = {"id": record["id"], "properties": shown, "createdAt": record["createdAt"],
                        "updatedAt": record["updatedAt"], "archived": bool(record.get("archived", False))}
        if record.get("archivedAt"):
            shown_record["archivedAt"] = record["archivedAt"]
        return shown_record


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _derive(type_name: str, props: dict[str, str]) -> None:
    """HubSpot calculates a line item's net ``amount`` from price, quantity and discount."""
    if type_name != "line_items":
        return
    try:
        price = Decimal(props.get("price") or "0")
        quantity = Decimal(props.get("quantity") or "0")
        discount = Decimal(props.get("hs_discount_percentage") or "0")
    except InvalidOperation:
        return
    props["amount"] = format((price * quantity * (1 - discount / 100)).quantize(Decimal("0.01")), "f")


def _type_problem(prop: dict[str, Any], text: str) -> tuple[str, str] | None:
    type_ = prop["type"]
    if type_ == "number":
        try:
            Decimal(text)
        except InvalidOperation:
            return f"{text} was not a valid number.", "INVALID_FLOAT"
    elif type_ == "bool" and text not in ("true", "false"):
        return f"{text} was not a valid boolean (true or false).", "INVALID_BOOLEAN"
    elif type_ in ("date", "datetime"):
        millis = to_millis(text)
        if millis is None:
            return f"{text} was not a valid date or epoch-milliseconds timestamp.", "INVALID_DATE"
        if type_ == "date" and millis % 86_400_000 != 0:
            return (f"{text} is at {datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat()} which is not "
                    "midnight UTC; date properties take a date.", "INVALID_DATE")
    elif type_ == "enumeration":
        allowed = [o["value"] for o in prop["options"]]
        values = text.split(";") if prop["fieldType"] == "checkbox" else [text]
        bad = [v for v in values if v not in allowed]
        if bad:
            return f"{bad[0]} was not one of the allowed options: {allowed}", "INVALID_OPTION"
    return None


def type_id(type_name: str) -> str:
    return TYPE_IDS[type_name]
