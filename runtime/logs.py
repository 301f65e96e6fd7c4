"""Structured logs: one JSON object per line, every field escaped by the encoder and truncated.

Nothing a sender controls can forge a line (``%0A`` in a path is ``\\n`` inside a JSON string) or flood the
log (every value is cut at :data:`MAX_VALUE_CHARS`, the message at :data:`MAX_MESSAGE_CHARS`). Log
calls pass facts as ``extra={...}`` fields; bodies, secrets and PII are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE_CHARS = 500
MAX_VALUE_CHARS = 200
#: attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _bounded(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f"…(+{len(text) - limit})"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time, level, logger, message, ``extra`` fields, exception type."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _bounded(record.getMessage(), MAX_MESSAGE_CHARS),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[_bounded(key, 40)] = _bounded(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__  # the type only: messages may carry data
        return json.dumps(entry, ensure_ascii=True, default=str)


def configure_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Route every logger (uvicorn's included) through one JSON handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


__all__ = ["MAX_MESSAGE_CHARS", "MAX_VALUE_CHARS", "JsonFormatter", "configure_logging"]
