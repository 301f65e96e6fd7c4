"""The layers read bottom-up: a module imports only from its own layer or the ones below it.

``canonical`` (the language) is at the bottom; vendor connectors and our own stores sit on it; activities
use ports and stores; workflows orchestrate activities; runtime starts workflows and observability watches
them (one layer: the client carries the tracing interceptor); the intake (router, claims, keyed locks) routes
events to runtime's launches for whoever brings them; the bootstrap composes all of these; the ingress, the
CLI and the worker sit on top (``starter.py serve`` runs the ingress, so the CLI may import it; the worker
imports neither: its schedules and its intake come from below). The emulators under ``sandbox/`` stand
apart: they share nothing with our connectors, so they cannot repeat a connector's misreading of a vendor.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: dict[str, int] = {
    "canonical": 0,
    "settings": 1,
    "connectors": 2, "stores": 2,
    "activities": 3,
    "workflows": 4,
    "runtime": 5, "observability": 5,
    "intake": 6,
    "bootstrap": 7,
    "ingress": 8,
    "cli": 9,
    "worker": 10,
    "devstack": 11, "starter": 11,
    "bench": 12,
}
#: the entry sides stand beside each other although ranked above: what one of them needs from another
#: belongs below all of them (the intake, the bootstrap, runtime's schedules)
MAY_NOT_IMPORT: dict[str, set[str]] = {
    "worker": {"cli", "ingress", "starter"},
}
#: the emulators may use only these of ours
SANDBOX_MAY_IMPORT = {"canonical", "settings", "sandbox"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sources() -> list[tuple[str, Path]]:
    top = [*LAYERS, "sandbox"]
    files: list[tuple[str, Path]] = []
    for name in top:
        package = ROOT / name
        if package.is_dir():
            files += [(name, p) for p in package.rglob("*.py")]
        elif (ROOT / f"{name}.py").exists():
            files.append((name, ROOT / f"{name}.py"))
    return files


def test_layers_every_package_and_script_is_placed() -> None:
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - {"tests"}
    ours |= {p.stem for p in ROOT.glob("*.py")}
    assert ours <= {*LAYERS, "sandbox"}, f"place these in LAYERS: {ours - {*LAYERS, 'sandbox'}}"


def test_layers_no_import_runs_back_up() -> None:
    upward: list[str] = []
    for layer, path in _sources():
        for imported in _imports(path):
            if layer == "sandbox":
                if imported in LAYERS and imported not in SANDBOX_MAY_IMPORT:
                    upward.append(f"{path.relative_to(ROOT)} imports {imported} (emulators stand apart)")
            elif imported == "sandbox" and LAYERS[layer] < LAYERS["cli"]:  # `starter.py sandbox` acts as the vendors
                upward.append(f"{path.relative_to(ROOT)} imports the emulators")
            elif imported in LAYERS and LAYERS[imported] > LAYERS[layer]:
                upward.append(f"{path.relative_to(ROOT)} ({layer}) imports {imported}")
    assert not upward, "\n".join(sorted(upward))


def test_layers_worker_imports_no_cli_or_ingress_module() -> None:
    crossing = [f"{path.relative_to(ROOT)} imports {imported}" for layer, path in _sources()
                for imported in _imports(path) if imported in MAY_NOT_IMPORT.get(layer, set())]
    assert not crossing, "\n".join(sorted(crossing))


def test_layers_intake_sits_below_every_entry_side() -> None:
    below = {"intake", "bootstrap"}
    assert all(LAYERS[name] < LAYERS[side] for name in below for side in ("ingress", "cli", "worker"))
    assert LAYERS["intake"] < LAYERS["bootstrap"]
    assert not (ROOT / "ingress" / "routing.py").exists(), "the intake lives in intake/, not in the ingress"
