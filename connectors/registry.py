"""Which adapter plays which role: descriptors listed once, chosen by configuration per role and per legal entity.

The registry holds one :class:`~connectors.spec.AdapterSpec` per adapter (``connectors/<vendor>/spec.py``).
Settings name the adapter of each role (``CRM_ADAPTER``, ``CLM_ADAPTER``, ``BILLING_ADAPTER``, ``ERP_ADAPTER``;
unset: the first adapter listed for the role) and a legal entity names its own ERP (``erp_adapter`` in
``LEGAL_ENTITIES``). The ERP port the activities see is an :class:`ErpRouter`: every call carries the tenant of
its legal entity, and the router hands it to that entity's adapter.

A new vendor is one package under ``connectors/`` with its ``spec.py`` and one line in :data:`DEFAULT_SPECS`;
nothing else changes. An unknown adapter name fails at start, naming the role, the entity and the names known.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from canonical import LegalEntity
from canonical.ownership import SystemRole
from canonical.refs import is_reference
from canonical.systems import OURS, Systems
from connectors.docusign.spec import SPEC as DOCUSIGN
from connectors.hubspot.spec import SPEC as HUBSPOT
from connectors.ironclad.spec import SPEC as IRONCLAD
from connectors.netsuite.spec import SPEC as NETSUITE
from connectors.routing import ErpRouter
from connectors.salesforce.spec import SPEC as SALESFORCE
from connectors.spec import AdapterSpec, RateLimits, VendorSettings
from connectors.stripe.spec import SPEC as STRIPE
from connectors.xero.spec import SPEC as XERO
from settings import Settings

#: every adapter this build knows, the default of each role first
DEFAULT_SPECS: tuple[AdapterSpec, ...] = (HUBSPOT, SALESFORCE, IRONCLAD, DOCUSIGN, STRIPE, XERO, NETSUITE)

#: ``(settings, transport) -> adapter`` (an adapter added in code, e.g. a test's in-memory one)
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
    """An adapter with work to do once at the worker's start (e.g. a CRM's custom properties)."""

    async def prepare(self) -> None:
        ...


class _InCodeSettings(VendorSettings):
    """The settings of an adapter added in code: none of its own."""

    base_url: str = ""


def in_code_spec(role: SystemRole, name: str, factory: AdapterFactory, *, display_name: str | None = None,
                 object_kinds: tuple[str, ...] = ()) -> AdapterSpec:
    """A descriptor for an adapter built in code (a deployment's own, a test's in-memory one)."""
    settings_class = type(f"{name.capitalize()}Settings", (_InCodeSettings,), {"adapter": name})
    return AdapterSpec(role=role, name=name, display_name=display_name or name, settings_class=settings_class,
                       adapter=lambda settings, _config, transport: factory(settings, transport),
                       object_kinds=object_kinds, rate_limits=RateLimits(reads_per_second=10.0))


@dataclass(frozen=True)
class AdapterRegistry:
    """Role -> adapter name -> descriptor. Immutable: :meth:`with_spec` returns a new registry."""

    specs: Mapping[SystemRole, Mapping[str, AdapterSpec]] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[AdapterSpec]) -> AdapterRegistry:
        roles: dict[SystemRole, dict[str, AdapterSpec]] = {}
        for spec in specs:
            if spec.name in roles.get(spec.role, {}):
                raise ValueError(f"two {spec.role.label} adapters are named {spec.name!r}")
            roles.setdefault(spec.role, {})[spec.name] = spec
        return cls(specs=roles)

    def with_spec(self, spec: AdapterSpec) -> AdapterRegistry:
        """This registry plus ``spec`` (replacing one of the same role and name)."""
        roles = {r: dict(names) for r, names in self.specs.items()}
        roles.setdefault(spec.role, {})[spec.name] = spec
        return AdapterRegistry(specs=roles)

    def with_adapter(self, role: SystemRole, name: str, factory: AdapterFactory) -> AdapterRegistry:
        """This registry plus an adapter built in code by ``factory`` (see :func:`in_code_spec`)."""
        return self.with_spec(in_code_spec(role, name, factory))

    def all(self) -> list[AdapterSpec]:
        """Every descriptor, role by role in registration order."""
        return [spec for role in VENDOR_ROLES for spec in self.specs.get(role, {}).values()]

    def names(self, role: SystemRole) -> list[str]:
        return sorted(self.specs.get(role, {}))

    def default_name(self, role: SystemRole) -> str:
        """The adapter a role gets when settings name none: the first registered for it."""
        names = list(self.specs.get(role, {}))
        if not names:
            raise UnknownAdapter(f"no {role.label} adapter is registered")
        return names[0]

    def spec(self, role: SystemRole, name: str, *, entity: str | None = None) -> AdapterSpec:
        found = self.specs.get(role, {}).get(name)
        if found is None:
            where = f" of legal entity {entity}" if entity else ""
            raise UnknownAdapter(f"unknown {role.label} adapter {name!r}{where}; known: "
                                 f"{', '.join(self.names(role)) or 'none'} (set {role.value.upper()}_ADAPTER"
                                 f"{' or the entity’s erp_adapter' if role is SystemRole.ERP else ''})")
        return found

    def factory(self, role: SystemRole, name: str, *, entity: str | None = None) -> AdapterFactory:
        """``(settings, transport) -> adapter`` of ``name`` for ``role``."""
        spec = self.spec(role, name, entity=entity)
        return lambda settings, transport: spec.build(settings, transport)

    def chosen(self, settings: Settings, role: SystemRole) -> AdapterSpec:
        """The descriptor settings choose for ``role`` (the ERP's default for the ERP)."""
        return self.spec(role, self.adapter_name(settings, role))

    def adapter_name(self, settings: Settings, role: SystemRole) -> str:
        """The adapter settings name for ``role``, or the role's default."""
        names = {SystemRole.CRM: settings.crm_adapter, SystemRole.CLM: settings.clm_adapter,
                 SystemRole.BILLING: settings.billing_adapter, SystemRole.ERP: settings.erp_adapter}
        if role not in names:
            raise ValueError(f"no vendor plays the {role.label} role")
        return names[role] or self.default_name(role)

    def erp_name_of(self, settings: Settings, entity: LegalEntity) -> str:
        """The ERP adapter that keeps ``entity``'s books."""
        return entity.erp_adapter or self.adapter_name(settings, SystemRole.ERP)

    def erp_of(self, settings: Settings, entity: LegalEntity) -> AdapterSpec:
        return self.spec(SystemRole.ERP, self.erp_name_of(settings, entity), entity=entity.code)

    def check(self, settings: Settings) -> None:
        """Fail before anything is built when settings name an adapter this registry does not know."""
        for role in VENDOR_ROLES:
            self.chosen(settings, role)
        for entity in settings.legal_entities:
            self.erp_of(settings, entity)

    def systems(self, settings: Settings) -> Systems:
        """The names the flows use in references, IDs and texts (:class:`canonical.systems.Systems`)."""
        return Systems(crm=self.chosen(settings, SystemRole.CRM).system,
                       clm=self.chosen(settings, SystemRole.CLM).system,
                       billing=self.chosen(settings, SystemRole.BILLING).system,
                       erp={e.code: self.erp_of(settings, e).system for e in settings.legal_entities})

    def in_use(self, settings: Settings) -> list[AdapterSpec]:
        """Every descriptor settings choose (each ERP once)."""
        chosen = [self.chosen(settings, role) for role in VENDOR_ROLES]
        chosen += [self.erp_of(settings, e) for e in settings.legal_entities]
        return list({(s.role, s.name): s for s in chosen}.values())

    def candidate_refs(self, settings: Settings, text: str) -> list[str]:
        """What a person may mean by ``text``: itself when it is ``system:object:id``, else every reference a
        bare ID can be in the adapters in use (a vendor whose IDs name their kind narrows it to one)."""
        text = text.strip()
        if is_reference(text):
            return [text]
        found: list[str] = []
        for spec in self.in_use(settings):
            if any(text.startswith(prefix) for prefix, _obj in spec.id_prefixes):
                return [spec.system.ref_of_id(text)]
            kinds = spec.recognise(text) or ([] if spec.id_prefixes or spec.id_patterns else list(spec.object_kinds))
            found += [spec.system.ref(kind, text) for kind in kinds]
        return [*found, OURS.ref("project", text)]

    def rate_limits(self, settings: Settings, role: SystemRole, entity: LegalEntity | None = None) -> RateLimits:
        """The pace of the adapter playing ``role`` (the ERP of ``entity`` for the ERP), from its settings when
        they set ``requests_per_second``, else its descriptor's."""
        spec = self.erp_of(settings, entity) if entity is not None else self.chosen(settings, role)
        limits = spec.rate_limits
        config = spec.load(settings)
        rate = getattr(config, "requests_per_second", None)
        search = getattr(config, "search_requests_per_second", None)
        if rate is None and search is None:
            return limits
        return RateLimits(reads_per_second=rate or limits.reads_per_second,
                          writes_per_second=limits.writes_per_second,
                          search_per_second=search or limits.search_per_second,
                          full_read_hours=limits.full_read_hours)


def _load_spec(path: str) -> AdapterSpec:
    module_name, _, attr = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr or "SPEC")
    except (ImportError, AttributeError) as exc:
        raise UnknownAdapter(f"cannot load the adapter descriptor {path!r} (EXTRA_ADAPTERS): {exc}") from exc
    if not isinstance(found, AdapterSpec):
        raise UnknownAdapter(f"{path!r} is not an adapter descriptor (AdapterSpec)")
    return found


@functools.cache
def _registry(extra: tuple[str, ...]) -> AdapterRegistry:
    registry = AdapterRegistry.of(DEFAULT_SPECS)
    for path in extra:
        registry = registry.with_spec(_load_spec(path))
    return registry


def default_registry(settings: Settings | None = None) -> AdapterRegistry:
    """Every adapter of this build (:data:`DEFAULT_SPECS`) plus the descriptors ``settings.extra_adapters``
    names (``package.module`` holding ``SPEC``, or ``package.module:NAME``): a deployment's own adapter is a
    package and a settings line, no edit here."""
    return _registry(tuple(settings.extra_adapters) if settings is not None else ())


def crm_deal_id(settings: Settings, deal_id: str) -> str:
    """A deal ID in the configured CRM's canonical form (the one workflow IDs are built from)."""
    return default_registry(settings).chosen(settings, SystemRole.CRM).canonical_id(deal_id)


def systems_of(settings: Settings) -> Systems:
    """The names of the adapters ``settings`` choose, for workflow IDs, references and texts."""
    return default_registry(settings).systems(settings)


def role_label(settings: Settings, role: SystemRole, registry: AdapterRegistry | None = None) -> str:
    """``ERP (Xero)``, ``CRM (HubSpot)``, ``ERP (NetSuite, Xero)`` when entities differ; ``revops`` for ours."""
    if role not in VENDOR_ROLES:
        return role.label
    registry = registry or default_registry(settings)
    specs = [registry.chosen(settings, role)]
    if role is SystemRole.ERP and settings.legal_entities:
        specs = [registry.erp_of(settings, e) for e in settings.legal_entities]
    return f"{role.label} ({', '.join(sorted({s.display_name for s in specs}))})"


@dataclass
class RoleAdapters:
    """The adapters settings chose, one port per role (the ERP's routed per legal entity)."""

    crm: Any
    clm: Any
    billing: Any
    erp: ErpRouter
    built: list[Any] = field(default_factory=list)
    erps: dict[str, Any] = field(default_factory=dict)  # ERP adapters by name, built so far
    build_erp: Callable[[str], Any] | None = None  # builds an ERP adapter no entity uses now (a cut-over's)

    def erp_named(self, name: str) -> Any:
        """The ERP adapter ``name`` (a cut-over's source or target), built on first use and closed with the rest;
        :class:`UnknownAdapter` for a name the registry does not know."""
        if name not in self.erps:
            if self.build_erp is None:
                raise UnknownAdapter(f"no ERP adapter {name!r} is built here")
            self.erps[name] = self.build_erp(name)
            self.built.append(self.erps[name])
        return self.erps[name]

    async def aclose(self) -> None:
        """Close every adapter built (each owns its http clients)."""
        for adapter in self.built:
            await close_adapter(adapter)


def build_role(settings: Settings, role: SystemRole, *, transport: httpx.AsyncBaseTransport | None = None,
               registry: AdapterRegistry | None = None) -> Any:
    """The adapter settings choose for one role (the ERP's default for the ERP), for a process that needs only
    that one (the ingress's CRM and CLM, the starter's CRM). Close it with :func:`close_adapter`."""
    registry = registry or default_registry(settings)
    return registry.chosen(settings, role).build(settings, transport)


async def close_adapter(adapter: object) -> None:
    """Close an adapter's http clients (an adapter without any has nothing to close)."""
    if isinstance(adapter, Closeable):
        await adapter.aclose()


def build_adapters(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                   registry: AdapterRegistry | None = None) -> RoleAdapters:
    """Build the adapter of each role from settings; one ERP adapter per distinct name among the entities (an
    ``ERP_ADAPTER`` that no entity uses is not built: the router has no default).
    Every name is checked before anything is built (an unknown one raises :class:`UnknownAdapter`)."""
    registry = registry or default_registry(settings)
    registry.check(settings)
    erp_names = sorted({registry.erp_name_of(settings, e) for e in settings.legal_entities})
    erps = {name: registry.spec(SystemRole.ERP, name).build(settings, transport) for name in erp_names}
    crm = registry.chosen(settings, SystemRole.CRM).build(settings, transport)
    clm = registry.chosen(settings, SystemRole.CLM).build(settings, transport)
    billing = registry.chosen(settings, SystemRole.BILLING).build(settings, transport)
    router = ErpRouter({e.erp_tenant_id: erps[registry.erp_name_of(settings, e)] for e in settings.legal_entities})
    return RoleAdapters(crm=crm, clm=clm, billing=billing, erp=router, built=[crm, clm, billing, *erps.values()],
                        erps=dict(erps),
                        build_erp=lambda name: registry.spec(SystemRole.ERP, name).build(settings, transport))


__all__ = ["DEFAULT_SPECS", "AdapterFactory", "AdapterRegistry", "Closeable", "ErpRouter", "Prepares",
           "RoleAdapters", "UnknownAdapter", "VENDOR_ROLES", "build_adapters", "build_role",
           "close_adapter", "default_registry", "in_code_spec", "role_label", "systems_of"]
