"""An environment for a whole stack (``make up``, ``make demo``) in which every port the stack binds is a free
loopback port: a test never takes a developer's running stack's ports, nor a port another test may hold."""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import bench_settings, child_env
from connectors.registry import default_registry
from sandbox.serve import free_port
from settings import Settings

#: client-side settings named ``*_port`` that name a port to connect to, never one a process of the stack binds
_CLIENT_PORTS = {"notify_smtp_port"}


def stack_env(data_dir: Path) -> dict[str, str]:
    """``os.environ`` plus this stack's settings, every bound port a free one (checked: none is a default)."""
    settings = bench_settings(data_dir)
    env = {**os.environ, **child_env(settings)}
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
    env.pop("TASK_QUEUE", None)
    assert_no_default_port(env)
    return env


def assert_no_default_port(env: dict[str, str]) -> None:
    """Every port setting (ours and each emulator's) is set in ``env`` and differs from its default."""
    defaults = {name: field.default for name, field in Settings.model_fields.items()
                if name.endswith("_port") and name not in _CLIENT_PORTS}
    for name, default in defaults.items():
        assert env.get(name.upper(), str(default)) != str(default), f"{name.upper()} is the default {default}"
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for spec in default_registry(settings).all():
        if spec.emulator is None:
            continue
        prefix = str(spec.settings_class.model_config.get("env_prefix") or "").upper()
        default = spec.load(settings).sandbox_port
        assert env.get(f"{prefix}SANDBOX_PORT", str(default)) != str(default), f"{spec.name}'s emulator port"
    temporal = env.get("TEMPORAL_ADDRESS", "127.0.0.1:7233").rsplit(":", 1)[1]
    assert temporal != "7233" and not env.get("TEMPORAL_UI_URL", ":8233").endswith(":8233")


def stack_ports(env: dict[str, str]) -> list[int]:
    """Every port the stack of ``env`` binds (the worker's metrics port only when a worker runs)."""
    names = ["CODEC_SERVER_PORT", "APPROVALS_PORT", "INGRESS_PORT", "INGRESS_METRICS_PORT", "SANDBOX_SLACK_PORT",
             "SANDBOX_SMTP_PORT"]
    ports = [int(env[n]) for n in names]
    ports += [int(v) for k, v in env.items() if k.endswith("_SANDBOX_PORT")]
    ports += [int(env["TEMPORAL_ADDRESS"].rsplit(":", 1)[1]), int(env["TEMPORAL_UI_URL"].rsplit(":", 1)[1])]
    return ports
