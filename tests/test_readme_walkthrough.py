"""The README's walkthrough, run step by step against a stack like ``make up``'s (Temporal dev server, the four
emulators with their webhooks to the ingress, the ingress, the worker), on free ports: every command exits as
the README says and nothing prints a traceback."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import bench_settings, child_env
from devstack.stack import Stack
from sandbox.serve import free_port
from settings import ROOT

README = ROOT / "README.md"


def walkthrough() -> str:
    """The bash block between ``<!-- walkthrough -->`` and ``<!-- /walkthrough -->``."""
    found = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", README.read_text(), re.S)
    assert found, "README.md has no walkthrough block"
    return found.group(1)


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = bench_settings(tmp_path / "data", contract_poll_interval_seconds=2.0, activity_retry_max_seconds=2.0)
    temporal_port = free_port()
    running = Stack(settings=settings, data_dir=Path(settings.data_dir), temporal_port=temporal_port,
                    ui_port=int(settings.temporal_ui_url.rsplit(":", 1)[1]),
                    extra_env={**child_env(settings), "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
                               "TEMPORAL_NAMESPACE": "default"})
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_readme_walkthrough_block_is_what_the_test_runs() -> None:
    steps = commands(walkthrough())
    assert all(".venv/bin/python starter.py" in step for step in steps)
    acts = {shlex.split(step.split("starter.py", 1)[1])[1] for step in steps if "starter.py sandbox" in step}
    assert acts == {"seed-deal", "move-deal", "sign", "bill", "pay", "amend", "edit-deal", "decline"}


def test_readme_walkthrough_runs_against_a_make_up_stack(stack: Stack, tmp_path: Path) -> None:
    lines = ["set -euo pipefail"]
    for step in commands(walkthrough()):
        # print each step before it runs, so a failure names it
        lines += [f"echo {shlex.quote('$ ' + step)}", step.replace(".venv/bin/python", shlex.quote(sys.executable))]
    script = tmp_path / "walkthrough.sh"
    script.write_text("\n".join(lines) + "\n")

    done = subprocess.run(["bash", str(script)], cwd=ROOT, env=stack.env(), capture_output=True, text=True,
                          timeout=900)

    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the walkthrough stopped (exit {done.returncode}):\n{output[-4000:]}"
    assert "Traceback" not in output and "Fatal Python error" not in output, output[-4000:]
    # what the steps produced, as a reader of the README would see it
    assert "refused: exit 1" in output and "no approval is pending" in output
    assert re.search(r"^outcome\s+provisioned", done.stdout, re.M), done.stdout[-3000:]
    assert re.search(r"^outcome\s+cancelled", done.stdout, re.M), done.stdout[-3000:]
    assert re.search(r"amendment 1: applied", done.stdout), done.stdout[-3000:]
    assert re.search(r"paid [0-9.]+ USD, now paid", done.stdout), done.stdout[-3000:]
