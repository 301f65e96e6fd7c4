"""How a connector error reaches Temporal: what ``business_step`` makes of it, converted by the SDK's failure
converter as the worker converts an activity's error."""

from __future__ import annotations

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, DefaultPayloadConverter

from activities.retrying import to_application_error


def assert_reaches_temporal(exc: BaseException, error_type: str) -> Failure:
    """``exc`` as an activity raises it (its ApplicationError, caused by ``exc``) converts to a Temporal failure of
    ``error_type``; its cause chain ends (an error raised "from" itself made the SDK's conversion recurse until
    RecursionError, and the retry decision, ``next_retry_delay`` included, never reached the server)."""
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None:
        assert all(link is not s for s in seen), f"{type(link).__name__} is its own cause: {seen}"
        seen.append(link)
        link = link.__cause__ or link.__context__
    assert isinstance(exc, Exception)
    error = to_application_error(exc)
    error.__cause__ = exc
    failure = Failure()
    DefaultFailureConverter().to_failure(error, DefaultPayloadConverter(), failure)
    assert failure.application_failure_info.type == error_type, failure
    return failure
