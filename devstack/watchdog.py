"""``python -m devstack.watchdog --run-file F``: stops the stack's children when the process that started them
ends without stopping them (SIGKILL, a crash, an out-of-memory kill).

The stack starts it in a session of its own and keeps the write end of its stdin; the stack writes ``+<pgid>``
for each child it starts and ``-<pgid>`` for each it stopped itself. The kernel closes that pipe when the stack's
process ends, however it ends, so end of input means "the parent is gone": the watchdog stops every group it
still knows (SIGTERM, grace, SIGKILL) and removes the run file. Chosen over ``prctl(PR_SET_PDEATHSIG)`` because
that signal follows the *thread* that started the child (the benchmarks start the stack from a worker thread),
reaches only the direct child, cannot escalate from SIGTERM to SIGKILL, and needs ``preexec_fn``, which is
unsafe in a process with threads; a pipe's end of input needs none of that, and no package.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from devstack.processes import stop_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-file", type=Path, required=True)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    args = parser.parse_args()
    for sig in (signal.SIGINT, signal.SIGHUP):  # only the end of input stops it
        signal.signal(sig, signal.SIG_IGN)
    groups: list[int] = []
    for line in sys.stdin:
        line = line.strip()
        with contextlib.suppress(ValueError):
            if line.startswith("+"):
                groups.append(int(line[1:]))
            elif line.startswith("-") and int(line[1:]) in groups:
                groups.remove(int(line[1:]))
    if groups:
        stop_groups(reversed(groups), grace=args.grace)
        args.run_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
