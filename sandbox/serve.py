"""Serve emulator apps: several in one process (``python -m devstack.emulators``), or one in a thread for tests."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range, never the same twice in a process.

    A port from the ephemeral range (``bind(0)``) can be taken by any process's own ephemeral bind before our
    server binds it: the Temporal dev server's internal services take theirs that way, and once took the
    ingress's port in the demo's test. Below the range only an explicit bind takes a port."""
    low = _ephemeral_low()
    for _ in range(500):
        port = random.randint(20000, max(20001, low - 1))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as sock:  # nothing free below the range: let the kernel choose
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_keep_alive=30, access_log=False, log_config=None)  # the process's JSON logs
    return uvicorn.Server(config)


async def serve_apps(apps: list[tuple[FastAPI, str, int]]) -> None:
    """Serve each ``(app, host, port)`` until cancelled (``make up``'s emulators: ``devstack/emulators.py``)."""
    await asyncio.gather(*(_server(app, host, port).serve() for app, host, port in apps))


@dataclass
class RunningApp:
    """An app served on loopback from a background thread."""

    app: FastAPI
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(app: FastAPI, *, host: str = "127.0.0.1", port: int | None = None) -> RunningApp:
    """Serve ``app`` in a daemon thread with its own event loop; returns once it accepts connections."""
    port = port or free_port(host)
    server = _server(app, host, port)
    thread = threading.Thread(target=server.run, name=f"serve-{port}", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError(f"server on port {port} failed to start")
        threading.Event().wait(0.02)
    else:
        raise RuntimeError(f"server on port {port} did not start")
    return RunningApp(app=app, host=host, port=port, server=server, thread=thread)
