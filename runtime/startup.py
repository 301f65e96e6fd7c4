"""What every process checks before it starts (worker, ingress, CLI): pure functions over settings.

* The approver registry must be sound (``canonical.authority.registry_problems``): one entry per person,
  every dual-approval threshold reachable by two distinct people, positive limits.
* The books mapping (``BOOKS_MAPPING``, ``canonical.books``) must cover every legal entity and name only the
  accounts and tax codes each entity declares: an unknown code is refused naming the entity and the product.
* The published development secrets (the approval signing key and the approvals JWT secret that ship as
  defaults) are refused unless every vendor base URL points at the local sandbox: a deployment that forgets
  one variable must not let anyone mint an approver's token or sign an approval.
* The product catalogue (``CATALOGUE`` / ``CATALOGUE_FILE``) must load: each bad SKU is named.

A refusal is :class:`StartRefused` naming what is wrong (never a secret's value).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from canonical.authority import registry_problems
from canonical.catalogue import CatalogueRefused
from connectors.registry import default_registry
from settings import DEV_APPROVAL_SIGNING_KEY, DEV_APPROVALS_JWT_SECRET, Settings


class StartRefused(ValueError):
    """The settings are not safe to start with; the message says which ones and why."""


def vendor_base_urls(settings: Settings) -> list[str]:
    """Every URL the adapters settings choose will call (each adapter's own settings say which)."""
    registry = default_registry(settings)
    return [url for spec in registry.in_use(settings) for url in spec.load(settings).vendor_urls()]


def is_sandbox_url(url: str) -> bool:
    """Whether ``url`` points at this machine's loopback (where the sandbox emulators run)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def development_secrets_in_use(settings: Settings) -> list[str]:
    """The names of the settings that still hold a published development secret."""
    found = []
    if any(entry.strip() == DEV_APPROVAL_SIGNING_KEY for entry in settings.approval_signing_keys):
        found.append("APPROVAL_SIGNING_KEYS")
    if settings.approvals_jwt_algorithm == "HS256" and settings.approvals_jwt_secret == DEV_APPROVALS_JWT_SECRET:
        found.append("APPROVALS_JWT_SECRET")
    return found


def refuse_development_secrets(settings: Settings, vendor_urls: Iterable[str]) -> None:
    """:class:`StartRefused` when a development secret is in use and any vendor URL is not the sandbox's."""
    in_use = development_secrets_in_use(settings)
    elsewhere = [url for url in vendor_urls if not is_sandbox_url(url)]
    if in_use and elsewhere:
        hosts = sorted({urlsplit(url).hostname or url for url in elsewhere})
        raise StartRefused(f"{', '.join(in_use)} still hold the published development secret while vendor URLs "
                           f"point beyond the sandbox ({', '.join(hosts)}): set your own secrets")


def refuse_unsound_settings(settings: Settings) -> None:
    """Every start-up check in one call: the approver registry, the catalogue, then the development secrets."""
    problems = registry_problems(settings.approval_authority())
    if problems:
        raise StartRefused("the approver registry (APPROVERS, APPROVAL_DUAL_ABOVE) is refused: "
                           + "; ".join(problems))
    refuse_unknown_books(settings)
    try:
        settings.product_catalogue()
    except CatalogueRefused as exc:
        raise StartRefused("the product catalogue (CATALOGUE, CATALOGUE_FILE) is refused: " + str(exc)) from exc
    refuse_development_secrets(settings, vendor_base_urls(settings))


def refuse_unknown_books(settings: Settings) -> None:
    """:class:`StartRefused` when the books mapping leaves an entity out or names an undeclared account or tax code."""
    problems = settings.books_mapping.problems([e.code for e in settings.legal_entities])
    if problems:
        raise StartRefused("the books mapping (BOOKS_MAPPING) is refused: " + "; ".join(problems))


__all__ = ["StartRefused", "development_secrets_in_use", "is_sandbox_url", "refuse_development_secrets",
           "refuse_unknown_books", "refuse_unsound_settings", "vendor_base_urls"]
