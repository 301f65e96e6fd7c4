"""External references: ``system:object:id`` strings that find a record in any system."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, field_validator

SYSTEMS = frozenset({"hubspot", "ironclad", "stripe", "xero", "salesforce", "docusign", "netsuite", "revops"})


class ExternalRef(BaseModel):
    """One record in one system, e.g. ``xero:invoice:INV-0042``."""

    model_config = ConfigDict(frozen=True)

    system: str
    object: str
    id: str

    @field_validator("system")
    @classmethod
    def _system(cls, value: str) -> str:
        value = value.lower()
        if value not in SYSTEMS:
            raise ValueError(f"unknown system {value!r}; expected one of {sorted(SYSTEMS)}")
        return value

    @field_validator("object", "id")
    @classmethod
    def _no_blank(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("must not be blank")
        return value

    def __str__(self) -> str:
        return f"{self.system}:{self.object}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> ExternalRef:
        """Parse ``system:object:id`` (the id may itself contain colons)."""
        parts = text.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"{text!r} is not of the form system:object:id")
        return cls(system=parts[0], object=parts[1], id=parts[2])


def ref(system: str, obj: str, id_: str) -> str:
    """The string form of a reference, for search attributes and write-backs."""
    return str(ExternalRef(system=system, object=obj, id=id_))


def ownership_marker(idempotency_key: str) -> str:
    """The mark a create writes on the record it makes (Stripe metadata ``revops_created_by``, Xero
    ``AccountNumber``): derived from the create's idempotency key, so every retry of the same run writes
    and recognises the same mark. A record carrying it was made by that run (even when the answer to the
    create was lost) and is that run's to compensate; any other record pre-existed and is left alone."""
    return "revops-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def contact_key(idempotency_key: str, reference: str) -> str:
    """The key of one contact within a batch create under ``idempotency_key`` (its ownership mark's source)."""
    return f"{idempotency_key}:{reference}"


#: Stripe object IDs carry their kind in the prefix (longest prefixes first: ``sub_sched_`` before ``sub_``)
STRIPE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sub_sched_", "schedule"), ("sub_", "subscription"), ("cus_", "customer"), ("prod_", "product"),
    ("price_", "price"), ("in_", "invoice"), ("ii_", "invoiceitem"), ("cn_", "credit_note"), ("ch_", "charge"),
    ("pi_", "payment_intent"), ("si_", "subscription_item"),
)

#: every ``system:object`` the flows put into ``BusinessKeys``, for finding a bare ID
KEY_KINDS: tuple[tuple[str, str], ...] = (
    ("hubspot", "deal"), ("hubspot", "company"), ("ironclad", "workflow"), ("ironclad", "record"),
    ("xero", "contact"), ("xero", "project"), ("xero", "invoice"), ("revops", "project"),
    *(("stripe", kind) for _prefix, kind in STRIPE_PREFIXES),
)


def stripe_ref(stripe_id: str) -> str:
    """``stripe:<object>:<id>`` with the object named by the ID's prefix (``in_…`` -> ``stripe:invoice:in_…``)."""
    for prefix, kind in STRIPE_PREFIXES:
        if stripe_id.startswith(prefix):
            return ref("stripe", kind, stripe_id)
    return ref("stripe", "object", stripe_id)


def candidate_refs(text: str) -> list[str]:
    """What a person may mean by ``text``: itself when it is ``system:object:id``, else every reference kind
    a bare ID can be (a Stripe ID names its kind by its prefix; HubSpot, Ironclad and Xero IDs do not)."""
    text = text.strip()
    parts = text.split(":", 2)
    if len(parts) == 3 and parts[0].lower() in SYSTEMS:
        return [text]
    for prefix, _kind in STRIPE_PREFIXES:
        if text.startswith(prefix):
            return [stripe_ref(text)]
    return [f"{system}:{obj}:{text}" for system, obj in KEY_KINDS if system != "stripe"]
