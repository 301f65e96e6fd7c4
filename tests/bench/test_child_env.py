"""A run's settings reach its children: the benchmarks and the chaos run start the ingress and the workers as
processes that read ``Settings()`` from their environment, so every setting a run chose must be in
:func:`bench.common.child_env`. It exported a fixed list of names, so the chaos run's own sweep interval
(``ledger_upkeep_interval_seconds``) never reached the ingress that makes the upkeep schedule: the log said
"every 300s" while the run waited for a 30-s sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.common import bench_settings, child_env
from connectors.registry import default_registry
from settings import Settings


def test_every_setting_a_run_chooses_is_what_its_children_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    chosen: dict[str, Any] = {"ledger_upkeep_interval_seconds": 30.0, "ledger_stranded_after_seconds": 45.0,
              "worker_workflow_task_slots": 6, "ingress_max_concurrency": 77, "metrics_refresh_seconds": 2.5,
              "contract_poll_interval_seconds": 5.0}
    settings = bench_settings(tmp_path, **chosen)
    env = child_env(settings)
    for name in Settings.model_fields:  # the child starts from a clean slate, then reads what the run exports
        monkeypatch.delenv(name.upper(), raising=False)
    for variable, text in env.items():
        monkeypatch.setenv(variable, text)
    child = Settings(_env_file=None)  # type: ignore[call-arg]

    for name, value in chosen.items():
        assert getattr(child, name) == value, name
    assert child.task_queue == settings.task_queue and child.ingress_port == settings.ingress_port
    for spec in default_registry(settings).all():  # each emulator's URL and port, as the adapter loads them
        assert spec.load(child).base_url == spec.load(settings).base_url, spec.name


def test_a_setting_left_at_its_default_is_not_exported(tmp_path: Path) -> None:
    env = child_env(bench_settings(tmp_path))
    assert "LEDGER_UPKEEP_INTERVAL_SECONDS" not in env and "WORKER_WORKFLOW_TASK_SLOTS" not in env
