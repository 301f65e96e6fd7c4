"""``python -m devstack.emulators``: serve the emulator of every adapter the registry lists, each on the port its
own settings give (``<VENDOR>_SANDBOX_PORT``), with the credentials its adapter uses, so the two agree.

The emulators under ``sandbox/`` know nothing of our connectors; this module, above both, hands each one its
adapter's settings (``create_app(vendor_settings, settings=..., database_url=...)``, the descriptor's
``Emulator`` entry).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from pathlib import Path
from typing import Any

from bootstrap import load_settings
from connectors.registry import AdapterRegistry, default_registry
from connectors.spec import AdapterSpec
from runtime.logs import configure_logging
from sandbox.kit import WebhookTarget
from sandbox.notify import create_webhook_app, start_smtp
from sandbox.serve import serve_apps
from settings import Settings


def build_emulator(spec: AdapterSpec, settings: Settings, *, database_url: str = "sqlite://") -> Any:
    """The emulator app of one adapter, configured with that adapter's own settings."""
    if spec.emulator is None:
        raise ValueError(f"{spec.display_name} has no emulator")
    module = importlib.import_module(spec.emulator.module)
    return getattr(module, spec.emulator.factory)(spec.load(settings), settings=settings, database_url=database_url)


def emulated(registry: AdapterRegistry) -> list[AdapterSpec]:
    """Every descriptor with an emulator."""
    return [spec for spec in registry.all() if spec.emulator is not None]


def webhook_target(spec: AdapterSpec, ingresses: list[str]) -> WebhookTarget | None:
    """Where an emulator delivers its webhooks: the adapter's receiver path on each ingress replica, in turn."""
    if not ingresses or not spec.webhook_path:
        return None
    urls = [f"{base.rstrip('/')}{spec.webhook_path}" for base in ingresses]
    return WebhookTarget(url=urls[0], alternates=urls[1:])


async def serve_emulators(settings: Settings, *, data_dir: Path | None = None,
                          webhook_targets: list[str] | None = None, registry: AdapterRegistry | None = None) -> None:
    """Serve every emulator on its configured port until cancelled (``make up``); webhooks go to
    ``<ingress>/webhooks/<adapter>`` (the ingress's path of the adapter's receiver), alternating between the
    ingress replicas of ``webhook_targets``."""
    registry = registry or default_registry(settings)
    apps: list[tuple[Any, str, int]] = []
    for spec in emulated(registry):
        url = f"sqlite:///{data_dir / f'sandbox-{spec.name}.sqlite'}" if data_dir else "sqlite://"
        app = build_emulator(spec, settings, database_url=url)
        target = webhook_target(spec, webhook_targets or [])
        if target is not None:
            app.state.control.webhooks.targets.append(target)
        apps.append((app, settings.sandbox_host, spec.load(settings).sandbox_port))
    # the notification channels' emulators: incoming webhooks and SMTP
    apps.append((create_webhook_app(), settings.sandbox_host, settings.sandbox_slack_port))
    smtp, _sink = start_smtp(settings.sandbox_host, settings.sandbox_smtp_port)
    try:
        await serve_apps(apps)
    finally:
        smtp.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep state in SQLite files here")
    parser.add_argument("--webhook-target", action="append", default=[],
                        help="ingress base URL to send webhooks to; repeat for replicas (delivered in turn)")
    args = parser.parse_args()
    configure_logging(logging.WARNING)  # one JSON object per line, like every process of the stack
    try:
        asyncio.run(serve_emulators(load_settings(), data_dir=args.data_dir, webhook_targets=args.webhook_target))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
