"""``python -m devstack.sandbox_process``: the vendor emulators as ``make up`` runs them, logging one JSON object
per line like every other process of the stack (the emulators themselves import nothing of ours but
``canonical`` and ``settings``, so the logging is set here)."""

from __future__ import annotations

import logging

from runtime.logs import configure_logging
from sandbox.__main__ import main

if __name__ == "__main__":
    configure_logging(logging.WARNING)
    main()
