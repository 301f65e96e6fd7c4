"""DocuSign eSignature <-> canonical, in one place.

How our contract terms travel through DocuSign
----------------------------------------------
A contract is an envelope sent from our server template (``DOCUSIGN_TEMPLATE_ID``) to its signer role
(``DOCUSIGN_SIGNER_ROLE``) with the terms as the role's text tabs, and our keys as envelope custom fields.
Once every recipient has signed (status ``completed``) the envelope's form data (``GET .../form_data``) holds
the executed terms: the envelope is then both the contract "workflow" the flows follow and its executed
"record" (one ID).

==========================  ==============================  ================================================
text tab label              value                           canonical
==========================  ==============================  ================================================
``counterpartyName``        text                            ``Contract.counterparty`` (``Account.name``)
``effectiveDate``           ``YYYY-MM-DD``                  ``ContractTerms.start_date``
``expirationDate``          ``YYYY-MM-DD``                  ``ContractTerms.end_date``
``contractValue``           ``USD 12000.00``                ``ContractTerms.total_value``
``billingModel``            enum value                      ``ContractTerms.billing_model``
``paymentTermsDays``        integer text                    ``ContractTerms.payment_terms_days``
``fixedFee``                ``USD 9500.00``                 ``ContractTerms.fixed_fee``
``budgetHours``             decimal text                    ``ContractTerms.budget_hours``
``milestones``              JSON array (camelCase)          ``ContractTerms.milestones``
``rateCard``                JSON array (camelCase)          ``ContractTerms.rate_card``
``recurringCharges``        JSON array (camelCase)          ``ContractTerms.recurring``
``billingTriggers``         JSON array of values            ``ContractTerms.billing_triggers``
==========================  ==============================  ================================================

Envelope text custom fields (hidden from signers): ``revopsKey`` (our idempotency key: a launch looks it up
first), ``revopsDealId``, ``revopsLegalEntity``, ``revopsTitle``; an amendment is a new envelope from the same
template carrying the terms as amended plus ``revopsParentEnvelopeId`` (the original contract's envelope) and
``revopsAmendmentNumber``. Money is a currency code and a decimal string, never a float.
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
from connectors.identifiers import UUID, payload_id, shown

VENDOR = "docusign"

KEY_FIELD = "revopsKey"
DEAL_FIELD = "revopsDealId"
ENTITY_FIELD = "revopsLegalEntity"
TITLE_FIELD = "revopsTitle"
PARENT_FIELD = "revopsParentEnvelopeId"
AMENDMENT_FIELD = "revopsAmendmentNumber"
COUNTERPARTY_TAB = "counterpartyName"

#: canonical ``ContractTerms`` field -> the template's text tab label
TERM_TABS: dict[str, str] = {
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
#: every tab label the seeded template holds (the emulator's template and the docs read this)
TAB_LABELS: tuple[str, ...] = (COUNTERPARTY_TAB, *TERM_TABS.values())
_MILESTONE_STATE = {"accepted", "billed"}  # runtime state of a milestone, not signed terms
#: DocuSign's envelope statuses -> ours
_STATUS = {"created": ContractStatus.DRAFT, "sent": ContractStatus.SIGNING, "delivered": ContractStatus.SIGNING,
           "signed": ContractStatus.SIGNING, "correct": ContractStatus.SIGNING,
           "completed": ContractStatus.EXECUTED, "declined": ContractStatus.CANCELLED,
           "voided": ContractStatus.CANCELLED, "deleted": ContractStatus.CANCELLED}


class MappingError(ValueError):
    """DocuSign data that cannot become a canonical model; ``field`` names the tab or field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- scalars ----------------------------------------------------------------------------------------
def money_text(money: Money) -> str:
    """``USD 12000.00``: a currency code and the exact decimal amount."""
    return f"{money.currency} {money.amount}"


def money_from_text(value: Any, field: str) -> Money:
    parts = str(value or "").split()
    if len(parts) != 2:
        raise MappingError(field, f"expected 'CUR 123.45', got {shown(value)!r}")
    try:
        return Money(amount=Decimal(parts[1]), currency=parts[0])
    except (InvalidOperation, ValidationError, ValueError) as exc:
        raise MappingError(field, f"not a monetary amount: {shown(value)!r}") from exc


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise MappingError(field, f"expected YYYY-MM-DD, got {shown(value)!r}") from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _list_text(items: Sequence[BaseModel], exclude: set[str] | None = None) -> str:
    return json.dumps([{_camel(k): v for k, v in item.model_dump(mode="json", exclude=exclude).items()}
                       for item in items], separators=(",", ":"))


def _list_from_text(text: Any, model: type[BaseModel], field: str) -> list[Any]:
    if text in (None, ""):
        return []
    try:
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise MappingError(field, "expected a JSON array")
        return [model.model_validate({_snake(k): v for k, v in item.items()}) for item in raw]
    except MappingError:
        raise
    except (ValueError, TypeError, AttributeError, ValidationError) as exc:
        raise MappingError(field, f"not a JSON array of {model.__name__}") from exc


# -- terms <-> tabs ------------------------------------------------------------------------------------
def terms_to_tabs(terms: ContractTerms) -> dict[str, str]:
    """The terms as text tab values by label (optional terms left empty are left out)."""
    tabs = {"effectiveDate": terms.start_date.isoformat(), "contractValue": money_text(terms.total_value),
            "billingModel": terms.billing_model.value, "paymentTermsDays": str(terms.payment_terms_days)}
    if terms.end_date:
        tabs["expirationDate"] = terms.end_date.isoformat()
    if terms.fixed_fee:
        tabs["fixedFee"] = money_text(terms.fixed_fee)
    if terms.budget_hours is not None:
        tabs["budgetHours"] = str(terms.budget_hours)
    if terms.milestones:
        tabs["milestones"] = _list_text(terms.milestones, _MILESTONE_STATE)
    if terms.rate_card:
        tabs["rateCard"] = _list_text(terms.rate_card)
    if terms.recurring:
        tabs["recurringCharges"] = _list_text(terms.recurring)
    if terms.billing_triggers:
        tabs["billingTriggers"] = json.dumps([t.value for t in terms.billing_triggers])
    return tabs


def terms_from_tabs(tabs: Mapping[str, Any]) -> ContractTerms:
    """Contract terms from tab values by label (the envelope's form data)."""
    for required in ("effectiveDate", "contractValue", "billingModel"):
        if tabs.get(required) in (None, ""):
            raise MappingError(required, "missing")
    try:
        model = BillingModel(tabs["billingModel"])
    except ValueError as exc:
        raise MappingError("billingModel", f"unknown billing model {shown(tabs['billingModel'])!r}") from exc
    try:
        triggers = [BillingTrigger(t) for t in json.loads(tabs.get("billingTriggers") or "[]")]
    except (ValueError, TypeError) as exc:
        raise MappingError("billingTriggers", "not a JSON array of triggers") from exc
    budget = tabs.get("budgetHours")
    try:
        return ContractTerms(
            start_date=_date(tabs["effectiveDate"], "effectiveDate"),
            end_date=_date(tabs["expirationDate"], "expirationDate") if tabs.get("expirationDate") else None,
            total_value=money_from_text(tabs["contractValue"], "contractValue"),
            billing_model=model,
            payment_terms_days=int(tabs.get("paymentTermsDays") or 30),
            fixed_fee=money_from_text(tabs["fixedFee"], "fixedFee") if tabs.get("fixedFee") else None,
            budget_hours=Decimal(str(budget)) if budget not in (None, "") else None,
            milestones=_list_from_text(tabs.get("milestones"), Milestone, "milestones"),
            rate_card=_list_from_text(tabs.get("rateCard"), RateCardEntry, "rateCard"),
            recurring=_list_from_text(tabs.get("recurringCharges"), RecurringCharge, "recurringCharges"),
            billing_triggers=triggers,
        )
    except (ValidationError, InvalidOperation, ValueError) as exc:
        if isinstance(exc, MappingError):
            raise
        raise MappingError("terms", str(exc)) from exc


def form_values(form_data: Mapping[str, Any]) -> dict[str, str]:
    """``{tabLabel: value}`` of an envelope's form data (``formData`` items ``{name, value}``)."""
    return {str(item.get("name")): str(item.get("value") or "") for item in form_data.get("formData") or []
            if isinstance(item, Mapping) and item.get("name")}


# -- envelopes -----------------------------------------------------------------------------------------
def envelope_body(request: ContractRequest, *, idempotency_key: str, template_id: str, role: str
                  ) -> dict[str, Any]:
    """The ``POST /envelopes`` body: sent now, from the template, the terms as the signer's text tabs."""
    tabs = {COUNTERPARTY_TAB: request.counterparty.name, **terms_to_tabs(request.terms)}
    signer = request.signer
    fields = {KEY_FIELD: idempotency_key, DEAL_FIELD: request.deal_crm_id, ENTITY_FIELD: request.legal_entity,
              TITLE_FIELD: request.title}
    return {
        "templateId": template_id,
        "emailSubject": request.title[:100],  # DocuSign refuses a subject longer than 100 characters
        "status": "sent",
        "templateRoles": [{
            "roleName": role,
            "name": signer.full_name or request.counterparty.name,
            "email": signer.email or "",
            "tabs": {"textTabs": [{"tabLabel": label, "value": value} for label, value in tabs.items()]},
        }],
        "customFields": {"textCustomFields": [{"name": name, "value": value, "show": "false", "required": "false"}
                                              for name, value in fields.items()]},
    }


def custom_fields(envelope: Mapping[str, Any]) -> dict[str, str]:
    """``{name: value}`` of an envelope's text custom fields (``include=custom_fields`` or the sub-resource)."""
    fields = envelope.get("customFields") if "customFields" in envelope else envelope
    texts = (fields or {}).get("textCustomFields") or []
    return {str(f.get("name")): str(f.get("value") or "") for f in texts if isinstance(f, Mapping)}


def status_of(envelope: Mapping[str, Any]) -> ContractStatus:
    return _STATUS.get(str(envelope.get("status") or "").lower(), ContractStatus.IN_REVIEW)


def is_amendment(envelope: Mapping[str, Any]) -> bool:
    return bool(custom_fields(envelope).get(PARENT_FIELD))


def contract_from_envelope(envelope: Mapping[str, Any], *, terms: ContractTerms | None = None,
                           counterparty: str = "") -> Contract:
    """An envelope as a contract (its ID is the workflow and, once completed, the record)."""
    fields = custom_fields(envelope)
    status = status_of(envelope)
    envelope_id = str(envelope["envelopeId"])
    return Contract(clm_workflow_id=envelope_id,
                    clm_record_id=envelope_id if status is ContractStatus.EXECUTED else None,
                    title=fields.get(TITLE_FIELD) or str(envelope.get("emailSubject") or ""),
                    counterparty=counterparty, status=status, terms=terms,
                    executed_on=_day(envelope.get("completedDateTime")) if status is ContractStatus.EXECUTED
                    else None,
                    deal_crm_id=fields.get(DEAL_FIELD) or None, legal_entity=fields.get(ENTITY_FIELD) or None)


def amendment_number(envelope: Mapping[str, Any]) -> int:
    raw = custom_fields(envelope).get(AMENDMENT_FIELD)
    try:
        number = int(str(raw))
    except ValueError as exc:
        raise MappingError(AMENDMENT_FIELD, f"envelope {envelope.get('envelopeId')} has no amendment number") from exc
    if number < 1:
        raise MappingError(AMENDMENT_FIELD, "must be 1 or more")
    return number


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
    return [AmendmentChange(field=field, old=_term_text(before, field), new=_term_text(after, field))
            for field in TERM_TABS if _term_text(before, field) != _term_text(after, field)]


def executed_contract(envelope: Mapping[str, Any], form: Mapping[str, str],
                      amendments: Sequence[tuple[Mapping[str, Any], Mapping[str, str]]]) -> Contract:
    """A completed contract envelope with its completed amendment envelopes (each carrying the terms as
    amended), applied in sequence: the contract's terms are those of its latest amendment."""
    record_id = str(envelope["envelopeId"])
    terms = terms_from_tabs(form)
    applied: list[Amendment] = []
    for amendment, values in sorted(amendments, key=lambda pair: amendment_number(pair[0])):
        after = terms_from_tabs(values)
        applied.append(Amendment(contract_record_id=record_id, sequence=amendment_number(amendment),
                                 executed_on=_day(amendment.get("completedDateTime")), terms=after,
                                 changes=amendment_changes(terms, after),
                                 clm_amendment_id=str(amendment["envelopeId"])))
        terms = after
    contract = contract_from_envelope(envelope, terms=terms, counterparty=form.get(COUNTERPARTY_TAB, ""))
    return contract.model_copy(update={"amendments": applied})


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])  # DocuSign's times are UTC: the date is the first ten
    except ValueError:
        return None


# -- Connect --------------------------------------------------------------------------------------------
def events_from_connect(body: Mapping[str, Any]) -> list[DomainEvent]:
    """A Connect (JSON SIM) delivery as canonical events: ``envelope-completed`` of a contract envelope is
    ``ContractExecuted``, of an amendment envelope ``AmendmentExecuted`` for the original; others are ``[]``
    (a declined or voided envelope reaches the flow through its status)."""
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadInvalid("event", "missing")
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise PayloadInvalid("data", "missing or not an object")
    envelope_id = payload_id(data.get("envelopeId"), "data.envelopeId", UUID)
    if event != "envelope-completed":
        return []
    summary = data.get("envelopeSummary") or {}
    if not isinstance(summary, Mapping):
        raise PayloadInvalid("data.envelopeSummary", "not an object")
    event_id = f"{envelope_id}.{event}"
    common: dict[str, Any] = {"source_system": VENDOR, "source_event_id": event_id,
                              "occurred_at": _timestamp(body.get("generatedDateTime")),
                              "correlation_id": f"{VENDOR}-{event_id}"}
    fields = custom_fields(summary)
    parent = fields.get(PARENT_FIELD)
    if parent:
        payload_id(parent, f"customFields.{PARENT_FIELD}", UUID)
        try:
            number = amendment_number(summary)
        except MappingError as exc:
            raise PayloadInvalid(f"customFields.{AMENDMENT_FIELD}", exc.reason) from exc
        return [AmendmentExecuted(clm_record_id=parent, sequence=number, clm_amendment_id=envelope_id, **common)]
    return [ContractExecuted(clm_workflow_id=envelope_id, clm_record_id=envelope_id, **common)]


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise PayloadInvalid("generatedDateTime", "missing")
    try:
        # DocuSign writes seven fractional digits; Python reads six at most
        head, dot, tail = value.replace("Z", "+00:00").partition(".")
        if dot:
            digits = "".join(c for c in tail if c.isdigit())
            zone = tail[len(digits):]
            value = f"{head}.{digits[:6]}{zone}"
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadInvalid("generatedDateTime", f"not an ISO 8601 time: {shown(value)!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
