"""Connector errors become Temporal retry decisions here, and only here.

- ``Unavailable`` (network, timeout, 5xx): a retryable ``ApplicationError`` — the retry policy works.
- ``RateLimited``: retryable, with ``next_retry_delay`` set to the vendor's Retry-After.
- ``AuthFailed``: non-retryable here, typed: the workflow's step shows it as the ``vendor_auth_failed`` exception
  and runs the step again every ``AUTH_RETRY_DELAY`` (credentials are fixed by a person; retrying fast is a
  storm, retrying silently hides it).
- ``Rejected``, ``NotFound``, ``Conflict``, ownership violations: non-retryable, typed, so the
  workflow turns them into a visible business exception instead of retrying forever.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from canonical.ownership import OwnershipViolation
from connectors.errors import AuthFailed, ConnectorError, RateLimited, Unavailable
from connectors.http import correlation_id

P = ParamSpec("P")
R = TypeVar("R")

AUTH_RETRY_DELAY = timedelta(minutes=5)


def to_application_error(exc: Exception) -> ApplicationError:
    """The ``ApplicationError`` that carries ``exc``'s retry decision to Temporal."""
    if isinstance(exc, RateLimited):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else timedelta(seconds=1)
        return ApplicationError(str(exc), type=exc.error_type, next_retry_delay=delay)
    if isinstance(exc, Unavailable):
        return ApplicationError(str(exc), type=exc.error_type)
    if isinstance(exc, AuthFailed):
        return ApplicationError(str(exc), type=exc.error_type, non_retryable=True)
    # Refusals are business outcomes the workflow handles (a visible exception, a compensation): BENIGN keeps
    # the SDK from logging each as a warning with a traceback; business_step logs one line instead.
    if isinstance(exc, ConnectorError):
        return ApplicationError(str(exc), type=exc.error_type, non_retryable=True,
                                category=ApplicationErrorCategory.BENIGN)
    if isinstance(exc, OwnershipViolation):
        return ApplicationError(str(exc), type="OwnershipViolation", non_retryable=True,
                                category=ApplicationErrorCategory.BENIGN)
    raise TypeError(f"not a connector error: {exc!r}")


def business_step(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity: set the correlation ID for outgoing calls, translate connector errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        info = activity.info()
        token = correlation_id.set(f"{info.workflow_id}/{info.activity_type}#{info.attempt}")
        try:
            return await fn(*args, **kwargs)
        except (ConnectorError, OwnershipViolation) as exc:
            error = to_application_error(exc)
            if error.non_retryable:
                # one line, no traceback, no vendor text (it may carry customer data): the type says enough
                activity.logger.info("%s refused by the vendor (%s); the workflow handles it, no retry",
                                     info.activity_type, error.type)
            raise error from exc
        finally:
            correlation_id.reset(token)

    return wrapper
