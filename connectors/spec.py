"""What an adapter declares about itself: one :class:`AdapterSpec` per adapter, in ``connectors/<vendor>/spec.py``.

The house above ``connectors/`` never names a vendor: the registry lists descriptors, and the ingress (webhook
receivers), ``make docs`` (field mapping, catalogue), the emulators of ``make up``, ``find`` and the workflows'
names and references all read them. A descriptor says:

- the role it plays and its name (the registry key, the reference namespace of ``BusinessKeys`` and of
  workflow IDs) and the name people read (``display_name``);
- its own settings class with its own environment prefix (``XYZ_BASE_URL`` ...), read by :meth:`AdapterSpec.load`;
  code (tests, a harness) overrides fields through ``Settings.adapter_settings[<name>]``;
- the adapter factory and, where the vendor sends webhooks, the receiver factory and its ingress path;
- the kinds of object its references name and the bare-ID patterns ``find`` recognises;
- its rate limits (what the flows pace their reads and writes at);
- its wire tables (for the field mapping) and its emulator (module and factory under ``sandbox/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from canonical.ownership import SystemRole
from canonical.refs import SYSTEM_NAME
from canonical.systems import System

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: adapter names are reference namespaces and workflow-ID segments: lower-case letters and digits only
NAME = SYSTEM_NAME


class VendorSettings(BaseSettings):
    """Base of every adapter's settings class: its own ``env_prefix``, the shared ``.env`` file."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: the adapter's registry name: ``Settings.adapter_settings[adapter]`` overrides fields in code
    adapter: ClassVar[str] = ""

    base_url: str
    sandbox_port: int = 0

    @classmethod
    def of(cls, settings: Settings) -> Any:
        """These settings as the deployment gives them: environment (prefix), ``.env``, then
        ``settings.adapter_settings[<adapter>]`` (tests and harnesses set fields there)."""
        return cls(**settings.adapter_settings.get(cls.adapter, {}))

    def vendor_urls(self) -> list[str]:
        """Every URL this adapter calls (the development-secret guard checks they are the sandbox's)."""
        return [self.base_url]


#: ``(settings, vendor settings, transport) -> adapter`` implementing the role's port
AdapterFactory = Callable[["Settings", Any, "httpx.AsyncBaseTransport | None"], Any]
#: ``(settings, vendor settings, adapter of the role or None, transport) -> webhook receiver``
ReceiverFactory = Callable[["Settings", Any, Any, "httpx.AsyncBaseTransport | None"], Any]


@dataclass(frozen=True)
class IdPattern:
    """A bare ID of this vendor's ``object`` is recognised by ``pattern`` (``find in_123`` -> the invoice)."""

    object: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RateLimits:
    """What this adapter's calls are paced at, below the vendor's documented limits (429s stay exceptions).

    ``reads_per_second``: bulk reads (reconciliation, backfill look-ups); ``writes_per_second``: bulk writes
    (backfill creates); ``search_per_second``: the CRM's search (the deal poll); ``full_read_hours``: how long a
    full read of one tenant may take at that pace (the reconciliation read's timeout)."""

    reads_per_second: float
    writes_per_second: float | None = None
    search_per_second: float | None = None
    full_read_hours: float = 1.0


@dataclass(frozen=True)
class Emulator:
    """The vendor's emulator: ``create_app(vendor_settings, settings=..., database_url=...)`` in ``module`` under
    sandbox/ (the adapter's own settings for credentials, the global ones for legal entities)."""

    module: str
    factory: str = "create_app"
    #: the module (``connectors/<vendor>/acts.py``) that acts as the vendor's people through the emulator's
    #: ``/_sandbox/`` controls (``starter.py sandbox``, ``make demo``, the benchmarks); None: no such acts
    acts: str | None = None


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter, as the registry and everything above ``connectors/`` knows it."""

    role: SystemRole
    name: str
    display_name: str
    settings_class: type[VendorSettings]
    adapter: AdapterFactory
    object_kinds: tuple[str, ...]
    rate_limits: RateLimits
    receiver: ReceiverFactory | None = None
    id_patterns: tuple[IdPattern, ...] = ()
    wire_tables: Callable[[], Iterable[Any]] | None = None
    emulator: Emulator | None = None
    id_prefixes: tuple[tuple[str, str], ...] = ()
    #: the most decimals the system keeps of an amount (an ERP's precision; routing refuses a currency with
    #: more); None: every currency's minor unit
    money_decimals: int | None = None
    #: the one form of a bare record ID that workflow IDs and references use (a vendor with two spellings of one
    #: ID, e.g. 15- and 18-character IDs, gives the canonical one; an ID it does not recognise comes back as it
    #: is, for the adapter to refuse visibly); None: IDs are used as given
    normalise_id: Callable[[str], str] | None = None

    def canonical_id(self, bare_id: str) -> str:
        """``bare_id`` in the form workflow IDs and references use (see :attr:`normalise_id`)."""
        return self.normalise_id(bare_id) if self.normalise_id is not None else bare_id

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"adapter name {self.name!r} must be lower-case letters and digits")
        if self.settings_class.adapter != self.name:
            raise ValueError(f"{self.settings_class.__name__}.adapter must be {self.name!r}")

    @property
    def system(self) -> System:
        """The name and display name the workflows use in references and texts."""
        return System(role=self.role.value, name=self.name, display=self.display_name, id_prefixes=self.id_prefixes,
                      money_decimals=self.money_decimals)

    @property
    def webhook_path(self) -> str | None:
        """The ingress path this adapter's vendor delivers to (``/webhooks/<name>``), when it sends webhooks."""
        return f"/webhooks/{self.name}" if self.receiver is not None else None

    def load(self, settings: Settings) -> Any:
        """This adapter's settings: its environment prefix, then what ``settings.adapter_settings`` gives."""
        return self.settings_class.of(settings)

    def build(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Any:
        """The adapter, from its own settings."""
        return self.adapter(settings, self.load(settings), transport)

    def build_receiver(self, settings: Settings, adapter: Any = None,
                       transport: httpx.AsyncBaseTransport | None = None) -> Any:
        """The webhook receiver (``adapter``: the role's adapter already built, when the receiver uses it)."""
        if self.receiver is None:
            raise ValueError(f"{self.display_name} sends no webhooks")
        return self.receiver(settings, self.load(settings), adapter, transport)

    def recognise(self, bare_id: str) -> list[str]:
        """The objects ``bare_id`` may be of this vendor: the kind its prefix names, else every kind whose
        pattern it matches."""
        for prefix, obj in self.id_prefixes:
            if bare_id.startswith(prefix):
                return [obj]
        return list(dict.fromkeys(p.object for p in self.id_patterns if p.pattern.fullmatch(bare_id)))


__all__ = ["NAME", "AdapterFactory", "AdapterSpec", "Emulator", "IdPattern", "RateLimits", "ReceiverFactory",
           "VendorSettings"]
