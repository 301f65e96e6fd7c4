"""Which system plays which role, as the workflows see it: names for references and IDs, display names for people.

The worker's configuration read (``load_flow_config``) hands a flow its :class:`Systems`, built from the adapter
registry: a workflow never names a vendor, it writes ``systems.crm.ref("deal", id)`` and
``f"Read {systems.crm.label} deal"`` ("Read CRM (HubSpot) deal"), and the ERP of each legal entity by
``systems.erp_of(code)``. Our own records are the :data:`OURS` system.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from canonical.money import minor_unit
from canonical.refs import SYSTEM_NAME, ref


class System(BaseModel):
    """One adapter as a flow names it: ``name`` in references and IDs, ``display`` in texts."""

    model_config = ConfigDict(frozen=True)

    role: str = Field(description="crm, clm, billing, erp (or revops for our own records)")
    name: str = Field(pattern=rf"^{SYSTEM_NAME.pattern}$")
    display: str
    id_prefixes: tuple[tuple[str, str], ...] = Field(
        default=(), description="(prefix, object) pairs, longest first, for vendors whose IDs name their kind")
    money_decimals: int | None = Field(default=None, ge=0, description="the most decimal places the system keeps "
                                       "of an amount (an ERP's precision); None: every currency's minor unit")

    @property
    def label(self) -> str:
        """``CRM (HubSpot)``: the role first, the adapter in brackets."""
        role = self.role.upper() if len(self.role) <= 3 else self.role.capitalize()
        return f"{role} ({self.display})"

    def ref(self, obj: str, id_: str) -> str:
        """``<name>:<object>:<id>``, the form of ``BusinessKeys`` entries."""
        return ref(self.name, obj, id_)

    def holds(self, currency: str) -> bool:
        """Whether every amount of ``currency`` (to its minor unit) is kept exactly, never rounded."""
        return self.money_decimals is None or minor_unit(currency) <= self.money_decimals

    def ref_of_id(self, id_: str, default: str = "object") -> str:
        """The reference of a bare ID whose object kind its prefix names (``default`` when none does)."""
        for prefix, obj in self.id_prefixes:
            if id_.startswith(prefix):
                return self.ref(obj, id_)
        return self.ref(default, id_)


OURS = System(role="revops", name="revops", display="RevOps")
#: an ERP no configuration names any more (its records are still referred to)
UNKNOWN_ERP = System(role="erp", name="erp", display="unknown")


class Systems(BaseModel):
    """The adapters of a deployment: one per role, the ERP per legal entity (entity code -> system)."""

    model_config = ConfigDict(frozen=True)

    crm: System
    clm: System
    billing: System
    erp: dict[str, System] = Field(default_factory=dict, description="legal entity code -> its ERP")

    def erp_of(self, entity_code: str) -> System:
        """The ERP keeping ``entity_code``'s books (an unknown entity is refused, never defaulted)."""
        try:
            return self.erp[entity_code]
        except KeyError:
            raise KeyError(f"no ERP is configured for legal entity {entity_code!r}; known: "
                           f"{', '.join(sorted(self.erp)) or 'none'}") from None

    def erp_or_unknown(self, entity_code: str) -> System:
        """The ERP of ``entity_code``, or a placeholder naming the role only for an entity no longer configured
        (texts and references of books written before it was removed)."""
        return self.erp.get(entity_code) or UNKNOWN_ERP


__all__ = ["OURS", "UNKNOWN_ERP", "System", "Systems"]
