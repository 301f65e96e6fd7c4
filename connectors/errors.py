"""The one error tree every connector raises. No HTTP status or vendor JSON leaks past it.

    ConnectorError
    ├── Unavailable      network error, timeout, 5xx: retry
    ├── RateLimited      429: retry after ``retry_after`` seconds
    ├── Rejected         the vendor refused the data (4xx validation): fix the data
    │   └── Unmapped     the books mapping has no account or tax code for a line: a person adds it
    ├── NotFound         the record does not exist
    ├── Conflict         the record changed or the idempotency key was reused differently
    ├── AuthFailed       credentials refused or missing
    └── UnknownTenant    no legal entity keeps its books in this tenant: routing refuses, never falls back

    WebhookError         a delivery we must refuse (not a connector failure)
    ├── SignatureInvalid missing, wrong or stale signature
    └── PayloadInvalid   not the vendor's shape; ``field`` names what is at fault
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of all connector failures.

    Attributes:
        vendor: the system that failed (``hubspot``, ``stripe``...).
        message: the vendor's own explanation when it gave one.
        status: the HTTP status, for logs only; flows branch on the class, not this.
    """

    #: the ``ApplicationError`` type that activities raise for this class
    error_type = "ConnectorError"

    def __init__(self, message: str, *, vendor: str = "", status: int | None = None) -> None:
        super().__init__(f"{vendor}: {message}" if vendor else message)
        self.vendor = vendor
        self.message = message
        self.status = status


class Unavailable(ConnectorError):
    """Network failure, timeout or 5xx: transient, retry."""

    error_type = "Unavailable"


class RateLimited(ConnectorError):
    """429: retry after ``retry_after`` seconds (``None`` when the vendor did not say)."""

    error_type = "RateLimited"

    def __init__(self, message: str, *, retry_after: float | None = None, vendor: str = "",
                 status: int | None = 429) -> None:
        super().__init__(message, vendor=vendor, status=status)
        self.retry_after = retry_after


class Rejected(ConnectorError):
    """The vendor refused the data (validation). Retrying the same data cannot help."""

    error_type = "Rejected"


class Unmapped(Rejected):
    """The books mapping (``BOOKS_MAPPING``) maps no account or tax code for a line, so nothing is posted: a
    person adds the mapping and the posting is retried (never a default account)."""

    error_type = "BooksMappingMissing"


class NotFound(ConnectorError):
    error_type = "NotFound"


class Conflict(ConnectorError):
    error_type = "Conflict"


class AuthFailed(ConnectorError):
    error_type = "AuthFailed"


class UnknownTenant(ConnectorError):
    """No configured legal entity names this ERP tenant, so no ERP may receive the call (a typo in one entity's
    tenant must not post its books to another ERP). Fixed in configuration; retrying cannot help.

    Attributes:
        tenant_id: the tenant asked for.
        known: the tenants the configured legal entities name.
    """

    error_type = "UnknownTenant"

    def __init__(self, tenant_id: str, known: list[str]) -> None:
        super().__init__(f"no legal entity keeps its books in ERP tenant {tenant_id!r}; "
                         f"known: {', '.join(known) or 'none'}")
        self.tenant_id = tenant_id
        self.known = known


class WebhookError(Exception):
    """A webhook delivery to refuse."""


class SignatureInvalid(WebhookError):
    """Missing, wrong or stale signature; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PayloadInvalid(WebhookError):
    """The body is not the vendor's shape; ``field`` names the part at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def error_for_status(status: int, message: str, *, vendor: str, retry_after: float | None = None
                     ) -> ConnectorError:
    """The error class for an HTTP status (the one mapping every adapter shares)."""
    if status == 429:
        return RateLimited(message, retry_after=retry_after, vendor=vendor)
    if status >= 500 or status in (408, 425):
        return Unavailable(message, vendor=vendor, status=status)
    if status in (401, 403):
        return AuthFailed(message, vendor=vendor, status=status)
    if status == 404:
        return NotFound(message, vendor=vendor, status=status)
    if status == 409:
        return Conflict(message, vendor=vendor, status=status)
    return Rejected(message, vendor=vendor, status=status)
