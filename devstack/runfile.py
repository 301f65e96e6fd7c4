"""The run file (``<data dir>/stack.run.json``): which processes a running stack started, with their commands
and ports, so that a stack left over from a killed run is found and named before another starts, and can be
stopped (``make stop``). Written at each start of a child, removed when the stack (or its watchdog) stopped all.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from devstack.processes import alive, started_at, stop_groups

RUN_FILE = "stack.run.json"


@dataclass
class RunningChild:
    """One child of a stack: its name, PID (= its process group), command, the ports it binds."""

    name: str
    pid: int
    command: list[str]
    ports: list[int]
    started: str | None = None

    def running(self) -> bool:
        """Still the process we started (not another that later got the same PID)."""
        return alive(self.pid) and (self.started is None or started_at(self.pid) == self.started)


@dataclass
class Leftover:
    """The live children of a stack whose run file is ``path``; ``parent_alive``: its ``make up`` still runs."""

    path: Path
    parent: int
    parent_alive: bool
    children: list[RunningChild]

    def describe(self) -> str:
        whose = (f"another stack is running (PID {self.parent})" if self.parent_alive
                 else f"a stack left over from a killed run (its parent, PID {self.parent}, is gone)")
        lines = [f"{whose}, state in {self.path.parent}:"]
        for child in self.children:
            ports = ", ".join(str(p) for p in child.ports) or "-"
            lines.append(f"  {child.name:<13} PID {child.pid:<8} ports {ports:<28} {' '.join(child.command)[:80]}")
        groups = " ".join(f"-{c.pid}" for c in self.children)
        how = (f"stop it with Ctrl-C in its terminal or `kill -TERM {self.parent}`" if self.parent_alive
               else f"stop it with `make stop` (python -m devstack.stack --stop), or `kill -TERM -- {groups}`")
        lines.append(how)
        return "\n".join(lines)


def write_run_file(path: Path, *, parent: int, watchdog: int | None, children: list[RunningChild]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"parent": parent, "parent_started": started_at(parent), "watchdog": watchdog,
                       "children": [asdict(c) for c in children]}, indent=1)
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def read_leftover(path: Path) -> Leftover | None:
    """The stack ``path`` names when any of its children still runs; a stale file is removed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        children = [RunningChild(**c) for c in data["children"]]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)  # half-written by a killed run; nothing to name
        return None
    live = [c for c in children if c.running()]
    if not live:
        path.unlink(missing_ok=True)
        return None
    parent = int(data["parent"])
    parent_alive = alive(parent) and data.get("parent_started") in (None, started_at(parent))
    return Leftover(path=path, parent=parent, parent_alive=parent_alive, children=live)


def leftovers(data_dir: Path) -> list[Leftover]:
    """Stacks still running from run files in ``data_dir`` or a folder right under it (``make demo``'s)."""
    paths = [data_dir / RUN_FILE]
    with contextlib.suppress(OSError):
        paths += sorted(data_dir.glob(f"*/{RUN_FILE}"))
    return [found for path in paths if (found := read_leftover(path)) is not None]


def stop_leftover(found: Leftover, *, grace: float = 10.0) -> None:
    """Stop a leftover stack's children (SIGTERM, grace, SIGKILL) and remove its run file."""
    stop_groups([c.pid for c in reversed(found.children)], grace=grace)
    found.path.unlink(missing_ok=True)


class LeftoverStack(RuntimeError):
    """A stack from an earlier run still holds processes (and ports); the message names them."""

    def __init__(self, found: list[Leftover]) -> None:
        super().__init__("\n".join(f.describe() for f in found))
        self.found = found
