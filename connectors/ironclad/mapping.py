"""Ironclad <-> canonical, in one place.

How our contract terms travel through Ironclad
----------------------------------------------
A contract is launched as a workflow from our template (``IRONCLAD_TEMPLATE_ID``) with these
workflow attributes; when it completes, Ironclad creates a record whose properties carry the same keys,
typed (``{"type": "monetary_amount", "value": {...}}``):

==========================  ======================  ===============================================
attribute / property        Ironclad type           canonical
==========================  ======================  ===============================================
``counterpartyName``        string (required)       ``Contract.counterparty`` (``Account.name``)
``contractTitle``           string                  ``Contract.title`` (the template names the workflow)
``revopsKey``               string                  our idempotency key: launch looks it up first
``revopsDealId``            string                  ``Contract.deal_crm_id``
``revopsLegalEntity``       string                  ``ContractRequest.legal_entity``
``counterpartySignerName``  string                  ``ContractRequest.signer``
``counterpartySignerEmail`` email                   ``ContractRequest.signer.email``
``effectiveDate``           date                    ``ContractTerms.start_date``
``expirationDate``          date                    ``ContractTerms.end_date``
``contractValue``           monetary amount         ``ContractTerms.total_value``
``billingModel``            string                  ``ContractTerms.billing_model`` (enum value)
``paymentTermsDays``        number (integer)        ``ContractTerms.payment_terms_days``
``fixedFee``                monetary amount         ``ContractTerms.fixed_fee``
``budgetHours``             string (decimal text)   ``ContractTerms.budget_hours`` (record numbers are integers)
``milestones``              string (JSON array)     ``ContractTerms.milestones``
``rateCard``                string (JSON array)     ``ContractTerms.rate_card``
``recurringCharges``        string (JSON array)     ``ContractTerms.recurring``
``billingTriggers``         string (JSON array)     ``ContractTerms.billing_triggers``
``agreementDate``           date (record only)      ``Contract.executed_on`` / ``Amendment.executed_on``
``amendmentNumber``         number (amendment only) ``Amendment.sequence``
==========================  ======================  ===============================================

Monetary amounts are ``{"currency": "USD", "amount": 1234.5}`` (a JSON number, read back as Decimal);
dates are ``YYYY-MM-DDT00:00:00Z``. Lists are JSON text in a string attribute (Ironclad record properties
hold no arrays of objects); their items use camelCase keys and money as ``{"currency", "amount": "<decimal
string>"}`` so no cent is lost.

Amendments are Ironclad records of type ``amendment`` whose ``parentId`` is the contract record and
``parentLinkType`` is ``amendment``; they carry the changed properties (same keys as above) plus
``amendmentNumber`` and ``agreementDate``. Ironclad rolls the changed properties up onto the parent
(``value`` = as amended, ``originalValue`` = as first signed) and lists the amendments' Ironclad IDs in the
parent's ``amendments``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from canonical import (
    Amendment,
    AmendmentChange,
    AmendmentExecuted,
    BillingModel,
    BillingTrigger,
    Contract,
    ContractExecuted,
    ContractStatus,
    ContractTerms,
    DomainEvent,
    Milestone,
    Money,
    RateCardEntry,
    RecurringCharge,
)
from canonical.requests import ContractRequest
from connectors.errors import PayloadInvalid
from connectors.identifiers import payload_id, shown

VENDOR = "ironclad"

KEY_ATTRIBUTE = "revopsKey"
AMENDMENT_RECORD_TYPE = "amendment"
AMENDMENT_NUMBER = "amendmentNumber"
AGREEMENT_DATE = "agreementDate"

#: canonical ``ContractTerms`` field -> Ironclad attribute / property key
TERM_KEYS: dict[str, str] = {
    "start_date": "effectiveDate",
    "end_date": "expirationDate",
    "total_value": "contractValue",
    "billing_model": "billingModel",
    "payment_terms_days": "paymentTermsDays",
    "fixed_fee": "fixedFee",
    "budget_hours": "budgetHours",
    "milestones": "milestones",
    "rate_card": "rateCard",
    "recurring": "recurringCharges",
    "billing_triggers": "billingTriggers",
}
_TERM_PROPERTIES = frozenset(TERM_KEYS.values())
# runtime state of a milestone, not signed terms
_MILESTONE_STATE = {"accepted", "billed"}


class MappingError(ValueError):
    """Ironclad data that cannot become a canonical model; ``field`` names the attribute at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- scalars ----------------------------------------------------------------------------------
def json_number(amount: Decimal) -> int | float:
    """A Decimal as a JSON number that reads back as exactly the same Decimal."""
    if amount == amount.to_integral_value():
        return int(amount)
    as_float = float(amount)
    if Decimal(repr(as_float)) != amount.normalize():
        raise MappingError("amount", f"{amount} has more digits than a JSON number keeps exactly")
    return as_float


def money_to_ironclad(money: Money) -> dict[str, Any]:
    """``{"currency": "USD", "amount": 1234.5}``: Ironclad's monetary amount."""
    return {"currency": money.currency, "amount": json_number(money.amount)}


def money_from_ironclad(value: Any, field: str) -> Money:
    if not isinstance(value, Mapping) or "currency" not in value or "amount" not in value:
        raise MappingError(field, "expected a monetary amount {currency, amount}")
    try:
        return Money(amount=Decimal(str(value["amount"])), currency=str(value["currency"]))
    except (InvalidOperation, ValidationError, ValueError) as exc:
        raise MappingError(field, f"not a monetary amount: {value!r}") from exc


def date_to_ironclad(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def date_from_ironclad(value: Any, field: str) -> date:
    if not isinstance(value, str) or len(value) < 10:
        raise MappingError(field, f"expected an ISO 8601 date, got {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise MappingError(field, f"expected an ISO 8601 date, got {value!r}") from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _list_to_text(items: list[BaseModel], exclude: set[str] | None = None) -> str:
    # mode="json" renders Decimal as text and Money as {"amount": "...", "currency": "..."}
    return json.dumps([{_camel(k): v for k, v in item.model_dump(mode="json", exclude=exclude).items()}
                       for item in items], separators=(",", ":"))


def _list_from_text(text: Any, model: type[BaseModel], field: str) -> list[Any]:
    if text in (None, ""):
        return []
    try:
        raw = json.loads(text) if isinstance(text, str) else text
        if not isinstance(raw, list):
            raise MappingError(field, "expected a JSON array")
        return [model.model_validate({_snake(k): v for k, v in item.items()}) for item in raw]
    except (ValueError, AttributeError, ValidationError) as exc:
        if isinstance(exc, MappingError):
            raise
        raise MappingError(field, f"not a JSON array of {model.__name__}: {exc}") from exc


# -- terms ------------------------------------------------------------------------------------
def terms_to_attributes(terms: ContractTerms) -> dict[str, Any]:
    """Contract terms as Ironclad attributes (values only; empty optional terms are left out)."""
    attrs: dict[str, Any] = {
        "effectiveDate": date_to_ironclad(terms.start_date),
        "contractValue": money_to_ironclad(terms.total_value),
        "billingModel": terms.billing_model.value,
        "paymentTermsDays": terms.payment_terms_days,
    }
    if terms.end_date:
        attrs["expirationDate"] = date_to_ironclad(terms.end_date)
    if terms.fixed_fee:
        attrs["fixedFee"] = money_to_ironclad(terms.fixed_fee)
    if terms.budget_hours is not None:
        attrs["budgetHours"] = str(terms.budget_hours)
    if terms.milestones:
        attrs["milestones"] = _list_to_text(list(terms.milestones), _MILESTONE_STATE)
    if terms.rate_card:
        attrs["rateCard"] = _list_to_text(list(terms.rate_card))
    if terms.recurring:
        attrs["recurringCharges"] = _list_to_text(list(terms.recurring))
    if terms.billing_triggers:
        attrs["billingTriggers"] = json.dumps([t.value for t in terms.billing_triggers])
    return attrs


def terms_from_attributes(attrs: Mapping[str, Any]) -> ContractTerms:
    """Contract terms from Ironclad attribute values (or record property values)."""
    for required in ("effectiveDate", "contractValue", "billingModel"):
        if attrs.get(required) in (None, ""):
            raise MappingError(required, "missing")
    try:
        model = BillingModel(attrs["billingModel"])
    except ValueError as exc:
        raise MappingError("billingModel", f"unknown billing model {attrs['billingModel']!r}") from exc
    triggers_raw = attrs.get("billingTriggers")
    try:
        triggers = [BillingTrigger(t) for t in (json.loads(triggers_raw) if triggers_raw else [])]
    except (ValueError, TypeError) as exc:
        raise MappingError("billingTriggers", f"not a JSON array of triggers: {triggers_raw!r}") from exc
    budget = attrs.get("budgetHours")
    try:
        return ContractTerms(
            start_date=date_from_ironclad(attrs["effectiveDate"], "effectiveDate"),
            end_date=date_from_ironclad(attrs["expirationDate"], "expirationDate")
            if attrs.get("expirationDate") else None,
            total_value=money_from_ironclad(attrs["contractValue"], "contractValue"),
            billing_model=model,
            payment_terms_days=int(attrs.get("paymentTermsDays", 30)),
            fixed_fee=money_from_ironclad(attrs["fixedFee"], "fixedFee") if attrs.get("fixedFee") else None,
            budget_hours=Decimal(str(budget)) if budget not in (None, "") else None,
            milestones=_list_from_text(attrs.get("milestones"), Milestone, "milestones"),
            rate_card=_list_from_text(attrs.get("rateCard"), RateCardEntry, "rateCard"),
            recurring=_list_from_text(attrs.get("recurringCharges"), RecurringCharge, "recurringCharges"),
            billing_triggers=triggers,
        )
    except (ValidationError, InvalidOperation, TypeError) as exc:
        raise MappingError("terms", str(exc)) from exc


def launch_body(request: ContractRequest, *, idempotency_key: str) -> dict[str, Any]:
    """The ``POST /workflows`` body for a contract request."""
    attrs: dict[str, Any] = {
        "counterpartyName": request.counterparty.name,
        "contractTitle": request.title,
        KEY_ATTRIBUTE: idempotency_key,
        "revopsDealId": request.deal_crm_id,
        "revopsLegalEntity": request.legal_entity,
        **terms_to_attributes(request.terms),
    }
    if request.signer.full_name:
        attrs["counterpartySignerName"] = request.signer.full_name
    if request.signer.email:
        attrs["counterpartySignerEmail"] = request.signer.email
    return {"template": request.template_id, "attributes": attrs}


# -- workflows --------------------------------------------------------------------------------
def status_from_workflow(workflow: Mapping[str, Any]) -> ContractStatus:
    """Ironclad status and step -> canonical status (completed = signed by all parties)."""
    status = workflow.get("status")
    if status == "cancelled":
        return ContractStatus.CANCELLED
    if status == "completed":
        return ContractStatus.EXECUTED
    if workflow.get("step") in ("Sign", "Archive"):
        return ContractStatus.SIGNING
    return ContractStatus.IN_REVIEW


def contract_from_workflow(workflow: Mapping[str, Any]) -> Contract:
    """A launched workflow as a contract with the requested terms (records hold the executed ones)."""
    attrs = workflow.get("attributes") or {}
    record_ids = workflow.get("recordIds") or []
    try:
        terms: ContractTerms | None = terms_from_attributes(attrs)
    except MappingError:
        terms = None  # not every workflow was launched by us; status still matters
    return Contract(
        clm_workflow_id=str(workflow["id"]),
        clm_record_id=str(record_ids[0]) if record_ids else None,
        title=str(attrs.get("contractTitle") or workflow.get("title") or ""),
        counterparty=str(attrs.get("counterpartyName") or ""),
        status=status_from_workflow(workflow),
        terms=terms,
        deal_crm_id=attrs.get("revopsDealId"),
    )


# -- records ----------------------------------------------------------------------------------
def property_values(properties: Mapping[str, Any], *, original: bool = False) -> dict[str, Any]:
    """Plain values of typed record properties; ``original`` picks the pre-amendment values."""
    values: dict[str, Any] = {}
    for key, prop in properties.items():
        if not isinstance(prop, Mapping) or "value" not in prop:
            continue
        values[key] = prop["originalValue"] if original and "originalValue" in prop else prop["value"]
    return values


def _workflow_id_from_source(record: Mapping[str, Any]) -> str | None:
    source = record.get("source") or {}
    workflow_id = source.get("workflowId") if source.get("type") == "workflow" else None
    # Ironclad writes it as ``workflow:<id>``
    return str(workflow_id).split(":", 1)[-1] if workflow_id else None


def _term_text(terms: ContractTerms, field: str) -> str | None:
    value = getattr(terms, field)
    if value is None or value == []:
        return None
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value],
                          sort_keys=True)
    if isinstance(value, Money):
        return str(value)
    return str(value.value if hasattr(value, "value") else value)


def amendment_changes(before: ContractTerms, after: ContractTerms) -> list[AmendmentChange]:
    """What an amendment changed, field by field, in canonical names."""
    changes = []
    for field in TERM_KEYS:
        old, new = _term_text(before, field), _term_text(after, field)
        if old != new:
            changes.append(AmendmentChange(field=field, old=old, new=new))
    return changes


def contract_from_record(record: Mapping[str, Any], amendment_records: Sequence[Mapping[str, Any]]) -> Contract:
    """An executed record (terms as amended) with its amendments applied in sequence."""
    properties = record.get("properties") or {}
    current = property_values(properties)
    record_id = str(record["id"])
    amendments: list[Amendment] = []
    ordered = sorted(amendment_records, key=lambda r: _amendment_number(r))
    changes_in_order = [{k: v for k, v in property_values(a.get("properties") or {}).items()
                         if k in _TERM_PROPERTIES} for a in ordered]
    # as first signed: an amended property's originalValue, or absent if an amendment added it
    amended = {key for changed in changes_in_order for key in changed}
    values = {k: v for k, v in property_values(properties, original=True).items()
              if k not in amended or "originalValue" in (properties.get(k) or {})}
    for amendment, changed in zip(ordered, changes_in_order, strict=True):
        before = terms_from_attributes(values)
        values = {**values, **changed}
        after = terms_from_attributes(values)
        executed = property_values(amendment.get("properties") or {}).get(AGREEMENT_DATE)
        amendments.append(Amendment(
            contract_record_id=record_id,
            sequence=_amendment_number(amendment),
            executed_on=date_from_ironclad(executed, AGREEMENT_DATE) if executed else None,
            terms=after,
            changes=amendment_changes(before, after),
            clm_amendment_id=str(amendment["id"]),
        ))
    executed_on = current.get(AGREEMENT_DATE)
    return Contract(
        clm_workflow_id=_workflow_id_from_source(record),
        clm_record_id=record_id,
        title=str(current.get("contractTitle") or record.get("name") or ""),
        counterparty=str(current.get("counterpartyName") or ""),
        status=ContractStatus.EXECUTED,
        terms=terms_from_attributes(current),
        executed_on=date_from_ironclad(executed_on, AGREEMENT_DATE) if executed_on else None,
        amendments=amendments,
        deal_crm_id=current.get("revopsDealId"),
        legal_entity=current.get("revopsLegalEntity") or None,
    )


def signed_terms_from_record(record: Mapping[str, Any], amendment_records: Sequence[Mapping[str, Any]]
                             ) -> ContractTerms:
    """The record's terms as first signed, before any amendment: each amended property's
    ``originalValue``, without the properties an amendment added."""
    properties = record.get("properties") or {}
    amended = {key for a in amendment_records for key in property_values(a.get("properties") or {})
               if key in _TERM_PROPERTIES}
    values = {k: v for k, v in property_values(properties, original=True).items()
              if k not in amended or "originalValue" in (properties.get(k) or {})}
    return terms_from_attributes(values)


def _amendment_number(record: Mapping[str, Any]) -> int:
    number = property_values(record.get("properties") or {}).get(AMENDMENT_NUMBER)
    if not isinstance(number, int | Decimal) or int(number) < 1:
        raise MappingError(AMENDMENT_NUMBER, f"amendment record {record.get('id')} has no amendment number")
    return int(number)


# -- webhooks ---------------------------------------------------------------------------------
def events_from_webhook(body: Mapping[str, Any], *, event_id: str) -> list[DomainEvent]:
    """An Ironclad webhook body as canonical events (most event types are of no interest: ``[]``).

    ``workflow_completed`` becomes ``ContractExecuted``; when the sandbox marks it as the completion of
    an amendment (``parentRecordID`` and ``amendmentNumber`` in the payload) it becomes
    ``AmendmentExecuted`` for the parent record.
    """
    payload = body.get("payload")
    if not isinstance(payload, Mapping):
        raise PayloadInvalid("payload", "missing or not an object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadInvalid("payload.event", "missing")
    if event != "workflow_completed":
        return []
    workflow_id = payload_id(payload.get("workflowID"), "payload.workflowID")
    occurred = _timestamp(body.get("timestamp"))
    common: dict[str, Any] = {"source_system": VENDOR, "source_event_id": event_id, "occurred_at": occurred,
                              "correlation_id": f"{VENDOR}-{event_id}"}
    record_id = payload.get("recordID")
    parent = payload.get("parentRecordID")
    for name, value in (("recordID", record_id), ("parentRecordID", parent)):
        if value:
            payload_id(value, f"payload.{name}")
    if parent:
        number = payload.get("amendmentNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise PayloadInvalid("payload.amendmentNumber", "expected a positive integer")
        return [AmendmentExecuted(clm_record_id=str(parent), sequence=number,
                                  clm_amendment_id=str(record_id) if record_id else None, **common)]
    return [ContractExecuted(clm_workflow_id=workflow_id, clm_record_id=str(record_id) if record_id else None,
                             **common)]


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PayloadInvalid("timestamp", "missing")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadInvalid("timestamp", f"not an ISO 8601 time: {shown(value)!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
