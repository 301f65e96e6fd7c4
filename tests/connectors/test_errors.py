"""The shared status -> connector error mapping."""

from __future__ import annotations

import pytest

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    NotFound,
    PayloadInvalid,
    RateLimited,
    Rejected,
    SignatureInvalid,
    Unavailable,
    WebhookError,
    error_for_status,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, Unavailable), (502, Unavailable), (503, Unavailable), (504, Unavailable),
        (408, Unavailable), (425, Unavailable),
        (429, RateLimited),
        (400, Rejected), (422, Rejected), (402, Rejected),
        (401, AuthFailed), (403, AuthFailed),
        (404, NotFound),
        (409, Conflict),
    ],
)
def test_errors_error_for_status_maps_each_status(status: int, cls: type[ConnectorError]) -> None:
    err = error_for_status(status, "vendor says no", vendor="stripe")
    assert type(err) is cls
    assert err.status == status and err.vendor == "stripe" and err.message == "vendor says no"
    assert err.error_type == cls.__name__


def test_errors_rate_limited_carries_retry_after() -> None:
    err = error_for_status(429, "slow down", vendor="hubspot", retry_after=7)
    assert isinstance(err, RateLimited) and err.retry_after == 7


def test_errors_message_names_the_vendor() -> None:
    assert str(error_for_status(422, "email is invalid", vendor="xero")) == "xero: email is invalid"
    assert str(Rejected("email is invalid")) == "email is invalid"


def test_errors_every_connector_error_shares_one_root() -> None:
    for cls in (Unavailable, RateLimited, Rejected, NotFound, Conflict, AuthFailed):
        assert issubclass(cls, ConnectorError)
    assert not issubclass(WebhookError, ConnectorError)


def test_errors_webhook_errors_name_reason_and_field() -> None:
    sig = SignatureInvalid("stale timestamp")
    bad = PayloadInvalid("data.object.id", "missing")
    assert sig.reason == "stale timestamp" and isinstance(sig, WebhookError)
    assert (bad.field, bad.reason, str(bad)) == ("data.object.id", "missing", "data.object.id: missing")
