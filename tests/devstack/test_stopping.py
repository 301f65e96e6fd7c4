"""Every way of stopping ``make up`` stops every child, as an operator (or a process manager) stops it: Ctrl-C
then SIGTERM a second later (a shutdown judged slow), SIGHUP (the terminal closed), SIGKILL of the parent; and
a stack left over from a killed run is named (PIDs, ports) by the next ``make up``, which can stop it.

Each test runs ``python -m devstack.stack --no-worker`` (the real entry of ``make up``) on free loopback ports
and looks at the processes themselves (``/proc``) and the ports, never at what the stack says it did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import port_open
from settings import ROOT
from tests.devstack.free_ports import stack_env, stack_ports

UP = [sys.executable, "-m", "devstack.stack", "--no-worker"]
#: seconds from the last signal to every child gone and every port free
BOUND = 30.0


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait long for a reaper here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(parent: int) -> set[int]:
    """PIDs whose parent is ``parent`` (the stack's children, before the parent dies)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(UP, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Embedded stack is up" not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    return process


def wait_all_gone(pids: set[int], ports: list[int], *, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if not [p for p in pids if alive(p)] and not [p for p in ports if port_open("127.0.0.1", p)]:
            return
        time.sleep(0.2)
    left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:120] for p in pids if alive(p)}
    pytest.fail(f"still running {bound:.0f}s after the stop: {left}; ports still held: "
                f"{[p for p in ports if port_open('127.0.0.1', p)]}")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = stack_env(tmp_path / "data")
    yield env
    # whatever a failed test left, so that it fails alone
    for pid in children_of_everything(tmp_path):
        os.kill(pid, signal.SIGKILL)


def children_of_everything(tmp_path: Path) -> list[int]:
    """Processes whose command line or environment names this test's data directory (its stack's, leftovers
    included)."""
    mark = str(tmp_path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "cmdline").read_bytes() or mark in (entry / "environ").read_bytes():
                if alive(int(entry.name)):
                    found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def test_stack_stops_every_child_on_ctrl_c_then_sigterm_a_second_later(env: dict[str, str], tmp_path: Path) -> None:
    parent = start_up(env, tmp_path / "up.log")
    children = children_of(parent.pid)
    assert len(children) >= 4, children  # codec server, Temporal, emulators, ingress (Prometheus when installed)

    parent.send_signal(signal.SIGINT)
    time.sleep(1)
    parent.send_signal(signal.SIGTERM)

    wait_all_gone(children | {parent.pid}, stack_ports(env))
    assert parent.wait(timeout=5) is not None
    assert "Traceback" not in (tmp_path / "up.log").read_text(errors="replace")


def test_stack_stops_every_child_on_sighup(env: dict[str, str], tmp_path: Path) -> None:
    parent = start_up(env, tmp_path / "up.log")
    children = children_of(parent.pid)

    parent.send_signal(signal.SIGHUP)

    wait_all_gone(children | {parent.pid}, stack_ports(env))


def test_stack_children_die_with_a_killed_parent(env: dict[str, str], tmp_path: Path) -> None:
    parent = start_up(env, tmp_path / "up.log")
    children = children_of(parent.pid)

    parent.kill()
    parent.wait(timeout=5)

    wait_all_gone(children, stack_ports(env))
    assert not (tmp_path / "data" / "stack.run.json").exists(), "the run file outlived the stack it names"


def test_make_up_names_a_leftover_stack_and_stops_it_on_request(env: dict[str, str], tmp_path: Path) -> None:
    parent = start_up(env, tmp_path / "up.log")
    children = children_of(parent.pid)
    # a run killed outright, its watchdog too (e.g. `kill -9` of every python process): the children stay
    run = json.loads((tmp_path / "data" / "stack.run.json").read_text())
    os.kill(run["watchdog"], signal.SIGKILL)
    children.discard(run["watchdog"])
    parent.kill()
    parent.wait(timeout=5)
    time.sleep(1)
    assert all(alive(p) for p in children), {p: Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in children
                                             if not alive(p)}

    refused = subprocess.run(UP, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "Traceback" not in said
    for pid in children:
        assert str(pid) in said, said
    assert env["CODEC_SERVER_PORT"] in said and env["TEMPORAL_ADDRESS"].rsplit(":", 1)[1] in said, said
    assert "make stop" in said, said

    stopped = subprocess.run([sys.executable, "-m", "devstack.stack", "--stop"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_all_gone(children, stack_ports(env), bound=5)
    assert not (tmp_path / "data" / "stack.run.json").exists()


pytestmark = pytest.mark.timeout(300)
