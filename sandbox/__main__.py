"""``python -m sandbox``: serve the four vendor emulators on their configured ports."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sandbox.serve import serve_all
from settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep state in SQLite files here")
    parser.add_argument("--webhook-target", default=None, help="ingress base URL to send webhooks to")
    args = parser.parse_args()
    settings = Settings()
    try:
        asyncio.run(serve_all(settings, data_dir=args.data_dir, webhook_target=args.webhook_target))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
