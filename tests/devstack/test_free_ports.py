"""The benchmarks' and chaos runs' stacks (``bench_settings``, used by tests too) bind no default port: the chaos
test's ingress served its approvals API on 8010, a developer's ``make up`` port."""

from __future__ import annotations

from pathlib import Path

from bench.common import bench_settings, child_env
from sandbox.serve import free_port
from tests.devstack.free_ports import assert_no_default_port


def test_bench_settings_bind_no_default_port(tmp_path: Path) -> None:
    env = {**child_env(bench_settings(tmp_path)), "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}

    assert_no_default_port(env)
