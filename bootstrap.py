"""The composition root: settings -> adapter registry -> adapters typed by port -> stores -> the event intake ->
the Temporal client, built in one place for each process that needs them.

- :func:`for_worker` (``worker.py``): every role's adapter, the stores, the intake the poll and the ledger
  sweep route through, the Temporal client;
- :func:`for_ingress` (``ingress/app.py``): the webhook receivers, the CRM and CLM the router reads, the
  event ledger, a lazily (re)connected Temporal client;
- :func:`for_cli` (``starter.py``): the same pieces, each built on first use (a command that reads the
  findings never builds a vendor client), and the plain HTTP client for the approvals API and the emulators.

Each returns a small typed bundle that closes what it built (``aclose``, or ``async with``). Tests pass what
they want instead: settings, an adapter ``registry`` (fakes), an httpx ``transport``, a Temporal ``client``.
Settings are read from the environment here (:func:`load_settings`) and by the entry points only; everything
below takes them as an argument.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.runtime import Runtime

from canonical.ownership import SystemRole
from connectors.notify import Notifications, notifications_from_settings
from connectors.ports import BillingPort, ClmPort, CrmPort, ErpPort, WebhookReceiver
from connectors.registry import (
    AdapterRegistry,
    RoleAdapters,
    build_adapters,
    build_role,
    close_adapter,
    default_registry,
)
from intake import ClientProvider, EventIntake, EventRouter
from runtime.connect import connect
from runtime.startup import refuse_unsound_settings
from settings import Settings
from stores.cutover import cutover_engine, switched_entities
from stores.events import EventLedger
from stores.findings import findings_engine
from stores.mirror import mirror_engine

Transport = httpx.AsyncBaseTransport


def load_settings() -> Settings:
    """Settings from the environment and ``.env``: the one place outside the entry points that reads them.
    Refused (:class:`runtime.startup.StartRefused`, naming what is wrong) when the approver registry is unsound
    or a published development secret is in use beyond the sandbox."""
    settings = with_erp_switches(Settings())
    refuse_unsound_settings(settings)
    return settings


def with_erp_switches(settings: Settings) -> Settings:
    """``settings`` with each legal entity an ERP cut-over moved on its new ERP adapter and tenant (the switches
    persisted by ``starter.py erp cutover``, in the findings database; they win over ``LEGAL_ENTITIES``)."""
    url = settings.findings_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return settings  # nothing was ever cut over here (and no database is made just to say so)
    engine = cutover_engine(url)
    try:
        return settings.model_copy(update={"legal_entities": switched_entities(engine, settings.legal_entities)})
    finally:
        engine.dispose()


class _Bundle:
    """A bundle closes what it built; ``async with`` does it on exit."""

    async def aclose(self) -> None:  # pragma: no cover - every bundle overrides it
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


# -- adapters ---------------------------------------------------------------------------------------
@dataclass
class Connectors:
    """One port per role, whichever adapters settings chose (``connectors/registry.py``); the ERP's routes each
    call to the adapter of its legal entity."""

    crm: CrmPort
    clm: ClmPort
    billing: BillingPort
    erp: ErpPort
    notifications: Notifications | None = None
    adapters: RoleAdapters | None = None
    registry: AdapterRegistry | None = None  # the one they were built from (names, paces, descriptors)

    async def aclose(self) -> None:
        if self.adapters is not None:
            await self.adapters.aclose()
        if self.notifications is not None:
            await self.notifications.aclose()


def build_connectors(settings: Settings, *, transport: Transport | None = None,
                     registry: AdapterRegistry | None = None) -> Connectors:
    """The adapter of each role that settings name (from ``registry``, the default one unless given). An adapter
    name the registry does not know fails here, before any is built. Close with :meth:`Connectors.aclose`."""
    registry = registry or default_registry(settings)
    adapters = build_adapters(settings, transport=transport, registry=registry)
    return Connectors(crm=adapters.crm, clm=adapters.clm, billing=adapters.billing, erp=adapters.erp,
                      notifications=notifications_from_settings(settings), adapters=adapters, registry=registry)


@asynccontextmanager
async def open_connectors(settings: Settings, *, transport: Transport | None = None,
                          registry: AdapterRegistry | None = None) -> AsyncIterator[Connectors]:
    """:func:`build_connectors`, closing their clients on exit."""
    built = build_connectors(settings, transport=transport, registry=registry)
    try:
        yield built
    finally:
        await built.aclose()


def receivers_from_settings(settings: Settings, *, clm: Any, crm: Any = None,
                            registry: AdapterRegistry | None = None) -> dict[str, WebhookReceiver]:
    """The webhook receiver of every adapter in use that has one, by its ingress path name
    (``/webhooks/<adapter>``); a receiver that needs its role's adapter (a CLM's key fetch) gets it."""
    registry = registry or default_registry(settings)
    by_role = {SystemRole.CLM: clm, SystemRole.CRM: crm}
    return {spec.name: spec.build_receiver(settings, by_role.get(spec.role))
            for spec in registry.in_use(settings) if spec.receiver is not None}


# -- stores -----------------------------------------------------------------------------------------
@dataclass
class Stores:
    """Our own databases: the event ledger (deliveries, poll checkpoints) and the reconciliation findings."""

    events: EventLedger
    findings: Engine
    mirror: Engine
    cutover: Engine | None = None  # ERP cut-overs: entity switches and moved records (stores/cutover.py)

    @classmethod
    def from_settings(cls, settings: Settings) -> Stores:
        return cls(events=EventLedger.from_settings(settings), findings=findings_engine(settings.findings_database_url),
                   mirror=mirror_engine(settings.findings_database_url),
                   cutover=cutover_engine(settings.findings_database_url))

    def close(self) -> None:
        self.events.close()
        self.findings.dispose()
        self.mirror.dispose()
        if self.cutover is not None:
            self.cutover.dispose()


# -- intake and Temporal ----------------------------------------------------------------------------
def client_provider(settings: Settings, *, client: Client | None = None,
                    connect_with: Callable[[], Awaitable[Client]] | None = None) -> ClientProvider:
    """The Temporal client as the intake uses it: ``client`` as given, else connected lazily (with
    ``connect_with``, else :func:`runtime.connect.connect`) and again after a failure."""
    if client is not None:
        return ClientProvider.fixed(client)
    return ClientProvider(connect_with or functools.partial(connect, settings),
                          timeout=settings.ingress_temporal_timeout_seconds)


def build_intake(settings: Settings, *, clients: ClientProvider, ledger: EventLedger, clm: ClmPort | None = None,
                 crm: CrmPort | None = None, on_recorded: Callable[[str, str], None] | None = None) -> EventIntake:
    """The one path every event takes (webhook, poll, sweep, replay): router over ``clients``, the CLM it finds
    a contract's deal with and the CRM it names a run's deal with, and the ledger it dedupes in."""
    return EventIntake(router=EventRouter(settings=settings, clients=clients, clm=clm, crm=crm), ledger=ledger,
                       on_recorded=on_recorded)


# -- the worker -------------------------------------------------------------------------------------
@dataclass
class WorkerParts(_Bundle):
    """What the worker serves with: every port, our stores, the intake, the Temporal client."""

    settings: Settings
    client: Client
    connectors: Connectors
    stores: Stores
    intake: EventIntake
    owns_stores: bool = True

    async def aclose(self) -> None:
        """Close the adapters and the stores built here (the client is the caller's to drop)."""
        await self.connectors.aclose()
        if self.owns_stores:
            self.stores.close()


async def for_worker(settings: Settings | None = None, *, client: Client | None = None,
                     runtime: Runtime | None = None, transport: Transport | None = None,
                     registry: AdapterRegistry | None = None, stores: Stores | None = None) -> WorkerParts:
    """The worker's parts. ``client``: connected here (with the worker's ``runtime``) unless given; ``stores``
    opened from settings unless given (then left open on close)."""
    settings = settings or load_settings()
    connectors = build_connectors(settings, transport=transport, registry=registry)
    try:
        client = client or await connect(settings, runtime=runtime)
    except BaseException:
        await connectors.aclose()
        raise
    owned = stores is None
    stores = stores or Stores.from_settings(settings)
    intake = build_intake(settings, clients=ClientProvider.fixed(client), ledger=stores.events,
                          clm=connectors.clm, crm=connectors.crm)
    return WorkerParts(settings=settings, client=client, connectors=connectors, stores=stores, intake=intake,
                       owns_stores=owned)


# -- the ingress ------------------------------------------------------------------------------------
@dataclass
class IngressParts(_Bundle):
    """What the webhook app is made of: receivers by vendor path, the CRM and CLM the router reads, the event
    ledger and the lazily connected Temporal client."""

    settings: Settings
    clients: ClientProvider
    ledger: EventLedger
    clm: ClmPort
    crm: CrmPort
    receivers: Mapping[str, WebhookReceiver]

    def intake(self, *, on_recorded: Callable[[str, str], None] | None = None) -> EventIntake:
        """The intake over these parts (``on_recorded``: the app's delivery metrics)."""
        return build_intake(self.settings, clients=self.clients, ledger=self.ledger, clm=self.clm, crm=self.crm,
                            on_recorded=on_recorded)

    async def aclose(self) -> None:
        await close_adapter(self.clm)
        await close_adapter(self.crm)
        self.ledger.close()


def for_ingress(settings: Settings | None = None, *, client: Client | None = None,
                connect_with: Callable[[], Awaitable[Client]] | None = None, transport: Transport | None = None,
                registry: AdapterRegistry | None = None, ledger: EventLedger | None = None) -> IngressParts:
    """The ingress's parts: the CRM and CLM adapters settings choose (``CRM_ADAPTER``, ``CLM_ADAPTER``), the
    receivers, the event ledger (from settings unless given) and the Temporal client provider."""
    settings = settings or load_settings()
    clm = build_role(settings, SystemRole.CLM, transport=transport, registry=registry)
    crm = build_role(settings, SystemRole.CRM, transport=transport, registry=registry)
    return IngressParts(settings=settings, clients=client_provider(settings, client=client, connect_with=connect_with),
                        ledger=ledger or EventLedger.from_settings(settings), clm=clm, crm=crm,
                        receivers=receivers_from_settings(settings, clm=clm, crm=crm, registry=registry))


# -- the command line -------------------------------------------------------------------------------
@dataclass
class CliParts(_Bundle):
    """What ``starter.py``'s commands use, each piece built on first use and closed with the bundle."""

    settings: Settings
    transport: Transport | None = None
    registry: AdapterRegistry | None = None
    http_transport: Transport | None = None
    client_override: Client | None = None
    _client: Client | None = field(default=None, init=False)
    _clients: ClientProvider | None = field(default=None, init=False)
    _adapters: dict[SystemRole, Any] = field(default_factory=dict, init=False)
    _ledger: EventLedger | None = field(default=None, init=False)
    _findings: Engine | None = field(default=None, init=False)
    _http: list[httpx.AsyncClient] = field(default_factory=list, init=False)

    async def client(self) -> Client:
        """The Temporal client (connected on first use, with the SDK's environment configuration)."""
        if self.client_override is not None:
            return self.client_override
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client

    @property
    def clients(self) -> ClientProvider:
        """The client as the intake uses it (lazily connected, re-connected after a failure)."""
        if self._clients is None:
            self._clients = client_provider(self.settings, client=self.client_override)
        return self._clients

    def _role(self, role: SystemRole) -> Any:
        if role not in self._adapters:
            self._adapters[role] = build_role(self.settings, role, transport=self.transport, registry=self.registry)
        return self._adapters[role]

    def crm(self) -> CrmPort:
        """The CRM adapter ``CRM_ADAPTER`` names."""
        return self._role(SystemRole.CRM)  # type: ignore[no-any-return]

    def clm(self) -> ClmPort:
        """The CLM adapter ``CLM_ADAPTER`` names."""
        return self._role(SystemRole.CLM)  # type: ignore[no-any-return]

    def billing(self) -> BillingPort:
        """The billing adapter ``BILLING_ADAPTER`` names."""
        return self._role(SystemRole.BILLING)  # type: ignore[no-any-return]

    def ledger(self) -> EventLedger:
        """The event ledger."""
        if self._ledger is None:
            self._ledger = EventLedger.from_settings(self.settings)
        return self._ledger

    def findings(self) -> Engine:
        """The reconciliation findings' database."""
        if self._findings is None:
            self._findings = findings_engine(self.settings.findings_database_url)
        return self._findings

    def intake(self) -> EventIntake:
        """The intake (``replay-event``): the same router and ledger as the ingress's."""
        return build_intake(self.settings, clients=self.clients, ledger=self.ledger(), clm=self.clm())

    def http(self, *, timeout: float = 30) -> httpx.AsyncClient:
        """A plain HTTP client for our own APIs and the emulators' controls (not a vendor API)."""
        http = httpx.AsyncClient(timeout=timeout, transport=self.http_transport)
        self._http.append(http)
        return http

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await close_adapter(adapter)
        self._adapters.clear()
        for http in self._http:
            await http.aclose()
        self._http.clear()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._findings is not None:
            self._findings.dispose()
            self._findings = None


def for_cli(settings: Settings | None = None, *, client: Client | None = None, transport: Transport | None = None,
            registry: AdapterRegistry | None = None, http_transport: Transport | None = None) -> CliParts:
    """The command line's parts; nothing is built until a command asks for it."""
    return CliParts(settings=settings or load_settings(), transport=transport, registry=registry,
                    http_transport=http_transport, client_override=client)


__all__ = ["CliParts", "Connectors", "IngressParts", "Stores", "WorkerParts", "build_connectors", "build_intake",
           "client_provider", "for_cli", "for_ingress", "for_worker", "load_settings", "open_connectors",
           "receivers_from_settings"]
