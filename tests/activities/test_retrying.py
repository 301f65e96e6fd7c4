"""Connector errors become Temporal retry decisions."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.retrying import AUTH_RETRY_DELAY, business_step, to_application_error
from canonical.ownership import OwnershipViolation, SystemRole
from connectors.errors import AuthFailed, Conflict, NotFound, RateLimited, Rejected, Unavailable
from connectors.http import correlation_id


def test_retrying_rate_limited_waits_the_vendor_retry_after() -> None:
    err = to_application_error(RateLimited("slow down", retry_after=7, vendor="hubspot"))
    assert err.type == "RateLimited" and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)


def test_retrying_rate_limited_without_retry_after_waits_a_second() -> None:
    err = to_application_error(RateLimited("slow down"))
    assert not err.non_retryable and err.next_retry_delay == timedelta(seconds=1)


def test_retrying_unavailable_is_retryable_by_the_policy() -> None:
    err = to_application_error(Unavailable("503", vendor="stripe", status=503))
    assert err.type == "Unavailable" and not err.non_retryable
    assert err.next_retry_delay is None
    assert err.message == "stripe: 503"


@pytest.mark.parametrize(
    ("exc", "type_name"),
    [
        (Rejected("email is invalid", vendor="xero", status=400), "Rejected"),
        (NotFound("no such deal", vendor="hubspot", status=404), "NotFound"),
        (Conflict("key reused", vendor="stripe", status=409), "Conflict"),
        (OwnershipViolation("account", "tax_number", SystemRole.ERP, SystemRole.CRM), "OwnershipViolation"),
    ],
)
def test_retrying_permanent_errors_are_non_retryable_and_typed(exc: Exception, type_name: str) -> None:
    err = to_application_error(exc)
    assert err.type == type_name and err.non_retryable
    assert err.message == str(exc)
    # a refusal is a business outcome the workflow handles: BENIGN (no SDK warning with a traceback)
    assert err.category is ApplicationErrorCategory.BENIGN


def test_retrying_transient_errors_keep_the_default_category() -> None:
    for exc in (Unavailable("503", vendor="stripe", status=503), RateLimited("slow"), AuthFailed("no")):
        assert to_application_error(exc).category is ApplicationErrorCategory.UNSPECIFIED


async def test_retrying_business_step_logs_a_refusal_as_one_line_without_vendor_text(
        caplog: pytest.LogCaptureFixture) -> None:
    @business_step
    async def refused_step(code: str) -> str:
        raise Rejected(f"customer jane@example.com refused {code}", vendor="xero", status=422)

    with caplog.at_level(logging.INFO), pytest.raises(ApplicationError):
        await ActivityEnvironment().run(refused_step, "FF")
    [record] = [r for r in caplog.records if "refused by the vendor" in r.getMessage()]
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "Rejected" in record.getMessage() and "jane@" not in record.getMessage()


def test_retrying_auth_failed_goes_to_the_workflow_which_retries_it_every_five_minutes() -> None:
    """The workflow's step shows ``vendor_auth_failed`` and runs the step again after ``AUTH_RETRY_DELAY``
    (tests/workflows/test_vendor_auth.py): the activity's own retry would hide it."""
    err = to_application_error(AuthFailed("token revoked", vendor="ironclad", status=401))
    assert err.type == "AuthFailed" and err.non_retryable
    assert AUTH_RETRY_DELAY == timedelta(minutes=5)


def test_retrying_refuses_foreign_exceptions() -> None:
    with pytest.raises(TypeError, match="not a connector error"):
        to_application_error(KeyError("x"))


async def test_retrying_business_step_sets_correlation_and_translates_errors() -> None:
    seen: list[str | None] = []

    @business_step
    async def failing_step(code: str) -> str:
        seen.append(correlation_id.get())
        raise Rejected(f"bad {code}", vendor="xero", status=422)

    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as info:
        await env.run(failing_step, "FF")
    assert info.value.type == "Rejected" and info.value.non_retryable
    assert isinstance(info.value.__cause__, Rejected)
    assert seen == [f"{env.info.workflow_id}/{env.info.activity_type}#{env.info.attempt}"]
    assert correlation_id.get() is None


async def test_retrying_business_step_passes_results_through() -> None:
    @business_step
    async def ok_step(value: int) -> int:
        return value * 2

    assert await ActivityEnvironment().run(ok_step, 21) == 42
