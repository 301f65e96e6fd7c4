"""Which vendor plays which role: adapters chosen by configuration, per role and, for the ERP, per legal entity.

The registry maps role -> adapter name -> factory ``(settings, transport) -> port``. Settings name the
adapter of each role (``CRM_ADAPTER``, ``CLM_ADAPTER``, ``BILLING_ADAPTER``, ``ERP_ADAPTER``; today's vendors
by default) and a legal entity may name its own ERP adapter (``erp_adapter`` in ``LEGAL_ENTITIES``). The ERP
port the activities see is an :class:`ErpRouter`: every call carries the tenant of its legal entity, and the
router hands it to that entity's adapter, so two entities may keep their books in two different ERPs.

A new vendor (Salesforce, NetSuite, ...) is one package under ``connectors/`` and one line in
:func:`default_registry`; nothing else changes. An unknown adapter name fails at start, naming the role,
the entity and the names known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from canonical import LegalEntity
from canonical.ownership import SystemRole
from connectors.routing import ErpRouter
from settings import Settings

#: ``(settings, transport) -> adapter``; the adapter implements the role's port
AdapterFactory = Callable[[Settings, "httpx.AsyncBaseTransport | None"], Any]
VENDOR_ROLES = (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING, SystemRole.ERP)


class UnknownAdapter(ValueError):
    """Settings name an adapter the registry does not know for a role."""


@runtime_checkable
class Closeable(Protocol):
    async def aclose(self) -> None:
        ...


@runtime_checkable
class Prepares(Protocol):
    """An adapter with work to do once at the worker's start (e.g. HubSpot's custom properties)."""

    async def prepare(self) -> None:
        ...


def _hubspot(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors import hubspot

    return hubspot.from_settings(settings, transport=transport)


def _ironclad(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors import ironclad

    return ironclad.from_settings(settings, transport=transport)


def _stripe(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors import stripe

    return stripe.from_settings(settings, transport=transport)


def _xero(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors import xero

    return xero.from_settings(settings, transport=transport)


@dataclass(frozen=True)
class AdapterRegistry:
    """Role -> adapter name -> factory. Immutable: :meth:`with_adapter` returns a new registry."""

    factories: Mapping[SystemRole, Mapping[str, AdapterFactory]] = field(default_factory=dict)

    def with_adapter(self, role: SystemRole, name: str, factory: AdapterFactory) -> AdapterRegistry:
        """This registry plus ``name`` for ``role`` (a deployment's own adapter, a test's in-memory one)."""
        roles = {r: dict(names) for r, names in self.factories.items()}
        roles.setdefault(role, {})[name] = factory
        return AdapterRegistry(factories=roles)

    def names(self, role: SystemRole) -> list[str]:
        return sorted(self.factories.get(role, {}))

    def factory(self, role: SystemRole, name: str, *, entity: str | None = None) -> AdapterFactory:
        found = self.factories.get(role, {}).get(name)
        if found is None:
            where = f" of legal entity {entity}" if entity else ""
            raise UnknownAdapter(f"unknown {role.label} adapter {name!r}{where}; known: "
                                 f"{', '.join(self.names(role)) or 'none'} (set {role.value.upper()}_ADAPTER"
                                 f"{' or the entity’s erp_adapter' if role is SystemRole.ERP else ''})")
        return found

    def check(self, settings: Settings) -> None:
        """Fail before anything is built when settings name an adapter this registry does not know."""
        for role in VENDOR_ROLES:
            self.factory(role, adapter_name(settings, role))
        for entity in settings.legal_entities:
            self.factory(SystemRole.ERP, erp_adapter_of(settings, entity), entity=entity.code)


def default_registry() -> AdapterRegistry:
    """Round 1's vendors: HubSpot (CRM), Ironclad (CLM), Stripe (billing), Xero (ERP)."""
    return AdapterRegistry(factories={
        SystemRole.CRM: {"hubspot": _hubspot},
        SystemRole.CLM: {"ironclad": _ironclad},
        SystemRole.BILLING: {"stripe": _stripe},
        SystemRole.ERP: {"xero": _xero},
    })


def adapter_name(settings: Settings, role: SystemRole) -> str:
    """The adapter settings choose for ``role`` (the ERP's default for entities that name none)."""
    names = {SystemRole.CRM: settings.crm_adapter, SystemRole.CLM: settings.clm_adapter,
             SystemRole.BILLING: settings.billing_adapter, SystemRole.ERP: settings.erp_adapter}
    if role not in names:
        raise ValueError(f"no vendor plays the {role.label} role")
    return names[role]


def erp_adapter_of(settings: Settings, entity: LegalEntity) -> str:
    """The ERP adapter that keeps ``entity``'s books."""
    return entity.erp_adapter or settings.erp_adapter


def role_label(settings: Settings, role: SystemRole) -> str:
    """``ERP (xero)``, ``CRM (hubspot)``, ``ERP (xero, netsuite)`` when entities differ; ``revops`` for ours."""
    if role not in VENDOR_ROLES:
        return role.label
    names = [adapter_name(settings, role)]
    if role is SystemRole.ERP:
        names = sorted({erp_adapter_of(settings, e) for e in settings.legal_entities} or set(names))
    return f"{role.label} ({', '.join(names)})"


@dataclass
class RoleAdapters:
    """The adapters settings chose, one port per role (the ERP's routed per legal entity)."""

    crm: Any
    clm: Any
    billing: Any
    erp: ErpRouter
    built: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close every adapter built (each owns its http clients)."""
        for adapter in self.built:
            await close_adapter(adapter)


def build_role(settings: Settings, role: SystemRole, *, transport: httpx.AsyncBaseTransport | None = None,
               registry: AdapterRegistry | None = None) -> Any:
    """The adapter settings choose for one role (the ERP's default for the ERP), for a process that needs only
    that one (the ingress's CRM and CLM, the starter's CRM). Close it with :func:`close_adapter`."""
    registry = registry or default_registry()
    return registry.factory(role, adapter_name(settings, role))(settings, transport)


async def close_adapter(adapter: object) -> None:
    """Close an adapter's http clients (an adapter without any has nothing to close)."""
    if isinstance(adapter, Closeable):
        await adapter.aclose()


def build_adapters(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                   registry: AdapterRegistry | None = None) -> RoleAdapters:
    """Build the adapter of each role from settings; one ERP adapter per distinct name among the entities.
    Every name is checked before anything is built (an unknown one raises :class:`UnknownAdapter`)."""
    registry = registry or default_registry()
    registry.check(settings)
    erp_default = adapter_name(settings, SystemRole.ERP)
    erp_names = sorted({erp_default, *(erp_adapter_of(settings, e) for e in settings.legal_entities)})
    erps = {name: registry.factory(SystemRole.ERP, name)(settings, transport) for name in erp_names}
    crm = registry.factory(SystemRole.CRM, settings.crm_adapter)(settings, transport)
    clm = registry.factory(SystemRole.CLM, settings.clm_adapter)(settings, transport)
    billing = registry.factory(SystemRole.BILLING, settings.billing_adapter)(settings, transport)
    router = ErpRouter({e.erp_tenant_id: erps[erp_adapter_of(settings, e)] for e in settings.legal_entities})
    return RoleAdapters(crm=crm, clm=clm, billing=billing, erp=router, built=[crm, clm, billing, *erps.values()])


__all__ = ["AdapterFactory", "AdapterRegistry", "Closeable", "Prepares", "RoleAdapters",
           "UnknownAdapter", "adapter_name", "build_adapters", "build_role", "close_adapter", "default_registry",
           "VENDOR_ROLES", "erp_adapter_of", "role_label"]
