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

from devstack.processes import started_at
from devstack.runfile import RunningChild, write_run_file
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


def start_up(env: dict[str, str], log: Path, *, args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """``make up`` (without a worker unless ``args`` ask otherwise) started and up."""
    command = [sys.executable, "-m", "devstack.stack", *args] if args is not None else UP
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
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
    assert parent.wait(timeout=5) is not None and children, "the stack had children and has ended"


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


def test_make_demo_names_a_leftover_of_make_up_before_it_starts(env: dict[str, str], tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stray = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        # what a killed `make up` leaves: its run file, and a child still running (here a stand-in)
        write_run_file(tmp_path / "data" / "stack.run.json", parent=gone.pid, watchdog=None, children=[
            RunningChild(name="temporal", pid=stray.pid, command=["temporal", "server", "start-dev"], ports=[17233],
                         started=started_at(stray.pid))])

        refused = subprocess.run([sys.executable, "-m", "devstack.demo"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=60, stdin=subprocess.DEVNULL)

        said = refused.stdout + refused.stderr
        assert refused.returncode == 1 and "Traceback" not in said, said
        assert f"PID {stray.pid}" in said and "17233" in said and "make stop" in said, said
        assert stray.poll() is None, "the demo stopped a stack it was not asked to stop"
    finally:
        stray.kill()
        stray.wait()


STUBBORN_STACK = """
import sys, time
from pathlib import Path
from devstack.stack import PYTHON, Stack, stop_on_signals
from settings import Settings

stack = Stack(settings=Settings(_env_file=None), data_dir=Path(sys.argv[1]))
stop_on_signals(stack)
try:
    # a child slow to stop: it ignores SIGTERM (as a server finishing its work would, for a while)
    stack._spawn("stubborn", [PYTHON, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                 "print('ready', flush=True); time.sleep(600)"], foreground_log=True)
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    pass
finally:
    stack.stop()
"""


def test_a_second_signal_during_a_slow_stop_kills_what_is_left_at_once(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    with log.open("ab") as out:
        parent = subprocess.Popen([sys.executable, "-c", STUBBORN_STACK, str(tmp_path / "data")], cwd=ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text():
        assert time.monotonic() < deadline and parent.poll() is None, log.read_text()
        time.sleep(0.1)
    children = children_of(parent.pid)
    try:
        parent.send_signal(signal.SIGINT)
        time.sleep(1)
        assert all(alive(p) for p in children), "the stubborn child should still be in its grace period"
        parent.send_signal(signal.SIGTERM)

        # well inside the 10 s grace period: the second signal cut it short, and nothing was left behind
        wait_all_gone(children | {parent.pid}, [], bound=4)
        assert parent.wait(timeout=1) == 0
        assert "Traceback" not in log.read_text()
    finally:
        for pid in children | {parent.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


pytestmark = pytest.mark.timeout(300)
