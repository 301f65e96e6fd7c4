"""Run the vendor emulators: all four in one process (``python -m sandbox``), or in a thread for tests."""

from __future__ import annotations

import asyncio
import importlib
import random
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from settings import Settings

VENDORS = ("hubspot", "ironclad", "stripe", "xero")


def vendor_port(settings: Settings, vendor: str) -> int:
    return int(getattr(settings, f"sandbox_{vendor}_port"))


def build_app(vendor: str, settings: Settings, *, database_url: str = "sqlite://") -> FastAPI:
    """The emulator app of one vendor (``sandbox.<vendor>.app.create_app``)."""
    module = importlib.import_module(f"sandbox.{vendor}.app")
    return module.create_app(settings, database_url=database_url)


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


async def serve_all(settings: Settings, *, data_dir: Path | None = None,
                    webhook_target: str | None = None) -> None:
    """Serve the four emulators on their configured ports until cancelled (``make up``)."""
    servers = []
    for vendor in VENDORS:
        url = f"sqlite:///{data_dir / f'sandbox-{vendor}.sqlite'}" if data_dir else "sqlite://"
        app = build_app(vendor, settings, database_url=url)
        if webhook_target:
            from sandbox.kit import WebhookTarget

            app.state.control.webhooks.targets.append(WebhookTarget(url=f"{webhook_target}/webhooks/{vendor}"))
        servers.append(_server(app, settings.sandbox_host, vendor_port(settings, vendor)))
    # the notification channels' emulators: incoming webhooks (8105) and SMTP (8025)
    from sandbox.notify import create_webhook_app, start_smtp

    servers.append(_server(create_webhook_app(), settings.sandbox_host, settings.sandbox_slack_port))
    smtp, _sink = start_smtp(settings.sandbox_host, settings.sandbox_smtp_port)
    try:
        await asyncio.gather(*(s.serve() for s in servers))
    finally:
        smtp.stop()


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
