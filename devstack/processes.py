"""Process groups of the stack's children: whether one still runs, and stopping several at once (SIGTERM, a
grace period, then SIGKILL). Each child leads its own process group (``start_new_session``), so a signal to the
group reaches whatever the child started too. Imports nothing heavy: the watchdog runs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from the state on (the command name may hold spaces), or None when gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid: int) -> bool:
    """The process runs: it exists and is not a zombie (an orphan's zombie holds no port and may wait long for
    a reaper in a container)."""
    if PROC.is_dir():
        stat = _stat(pid)
        return stat is not None and stat[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells it from a later process given the
    same PID; None where ``/proc`` is absent or the process is gone."""
    stat = _stat(pid)
    return stat[19] if stat is not None else None


def group_alive(pgid: int) -> bool:
    """Any process of the group runs (zombies aside)."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z" and int(stat[2]) == pgid:
                return True
    return False


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(pgids: Iterable[int], *, grace: float, hurry: Callable[[], bool] = lambda: False,
                reap: Callable[[], None] = lambda: None) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds for all to end (or until ``hurry()`` says a second
    request came), then SIGKILL what is left. ``reap`` collects our own exited children while waiting (else
    they stay zombies of ours)."""
    pending = list(pgids)
    for pgid in pending:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline and not hurry():
        time.sleep(0.1)
        reap()
        pending = [p for p in pending if group_alive(p)]
    for pgid in pending:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        reap()
        pending = [p for p in pending if group_alive(p)]
