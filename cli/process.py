"""What every ``starter.py`` command shares: exit codes, one-line errors, tables and JSON, and one exit path.

Exit codes (DESIGN.md): ``0`` done, ``1`` refused or failed (the system said no, or is unreachable),
``2`` usage error or unknown ID. An expected error is one line on stderr, never a traceback.

Why the process ends with :func:`exit_process` (``os._exit`` after flushing): the Temporal SDK's client
runs on a process-global Tokio runtime whose threads call back into Python (``call_soon_threadsafe``)
whenever an RPC completes; the SDK (1.35) offers no way to close a client or that runtime
(temporalio/sdk-python#300, PyO3/pyo3-async-runtimes#40). A short-lived process that lets the
interpreter finalize while one of those threads is still inside its callback aborts with
``Fatal Python error: PyGILState_Release`` (rc 134). Every await of a command finishes inside the
event loop, the command closes what it opened (HTTP clients, ledgers), and then the process ends without
interpreter teardown, so no Rust thread can meet a finalizing interpreter.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canonical.text import printable

OK = 0
REFUSED = 1
USAGE = 2


class CliError(Exception):
    """An expected failure of a command: printed as one line on stderr, ended with ``code``."""

    def __init__(self, message: str, code: int = REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UnknownId(CliError):
    """The ID names nothing (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)


# -- output ------------------------------------------------------------------------------------------
def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout/stderr: colours only on a terminal; off a terminal no width limit,
    so full IDs are never cut (pipes and files get the whole line)."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(file=stream, force_terminal=None, no_color=not terminal or "NO_COLOR" in os.environ,
                   width=None if terminal else 10_000, highlight=False, soft_wrap=not terminal)


#: how outcomes and states stand out on a terminal: done green, decisions plain, stuck yellow, failed red
STATE_STYLES = {
    "provisioned": "green", "applied": "green", "COMPLETED": "green", "started": "green", "signalled": "green",
    "failed": "bold red", "FAILED": "bold red", "TERMINATED": "red", "TIMED_OUT": "red", "rejected": "yellow",
    "data_exception": "yellow", "amendment_gap": "yellow", "ownership_conflict": "yellow",
    "propagation_failed": "bold red", "awaiting_approval": "cyan", "echo": "dim", "duplicate": "dim",
}


def _cell(value: Any) -> Text:
    text = "-" if value is None or value == "" else printable(value)
    first = text.split(" ", 1)[0].strip("[]()")
    return Text(text, style=STATE_STYLES.get(first, ""))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          wrap: Sequence[str] = ()) -> None:
    """Aligned columns on stdout. ID columns never wrap or cut; those named in ``wrap`` fold."""
    out = console()
    grid = Table(box=box.SIMPLE_HEAD if out.is_terminal else None, show_edge=False, pad_edge=False,
                 title=title, title_justify="left", header_style="bold" if out.is_terminal else "")
    for name in columns:
        if name in wrap:
            grid.add_column(name, overflow="fold", ratio=1)
        else:
            grid.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(*(_cell(value) for value in row))
    out.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """``label  value`` lines, aligned; multi-line values stay under their label."""
    out = console()
    grid = Table(box=None, show_header=False, pad_edge=False, show_edge=False)
    grid.add_column(style="bold" if out.is_terminal else "", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in pairs:
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            grid.add_row(Text(label), Text("\n".join(printable(v) for v in value)))
        else:
            grid.add_row(Text(label), _cell(value))
    out.print(grid)


def line(text: str) -> None:
    """One plain line on stdout (no markup; control characters escaped, so it stays one line)."""
    print(printable(text), flush=False)


def emit_json(data: Any) -> None:
    """JSON for scripts: models dumped in JSON mode, everything else as ``json`` does, dates as strings."""
    print(json.dumps(_plain(data), indent=2, default=str))


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(v) for v in data]
    return data


def error(message: str) -> None:
    """One line on stderr (whitespace folded, control characters escaped, so it stays one line)."""
    print(printable(" ".join(message.split())), file=sys.stderr)


# -- input -------------------------------------------------------------------------------------------
def describe_validation(exc: ValidationError) -> str:
    """``field: problem`` for each error of a pydantic model, without pydantic's URLs and input echo."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "value"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(message if message.startswith(f"{where} ") else f"{where}: {message}")
    return "; ".join(parts)


def visibility_literal(value: str) -> str:
    """A string literal for a Temporal visibility query, never a piece of query syntax.

    No system's IDs contain quotes, backslashes or control characters, and the dev server's SQLite
    visibility store fails on an escaped quote inside a KeywordList value ("unterminated string"), so such
    input is refused as a usage error (exit 2) instead of being escaped into a query that might break.
    """
    if any(ch in value for ch in '"\\') or any(ord(ch) < 32 for ch in value):
        raise CliError(f"not an ID: {value!r} (IDs never contain quotes, backslashes or control characters)", USAGE)
    return f'"{value}"'


# -- the one exit path --------------------------------------------------------------------------------
def exit_process(code: int) -> NoReturn:
    """Flush what was printed and logged, then end the process without interpreter teardown (see the
    module docstring: the SDK's runtime threads must never meet a finalizing interpreter)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `| head`): nothing more to say
            pass
    os._exit(code)


__all__ = ["OK", "REFUSED", "USAGE", "CliError", "UnknownId", "console", "describe_validation", "emit_json",
           "error", "exit_process", "fields", "line", "table", "visibility_literal"]
