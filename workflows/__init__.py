"""Workflows: deterministic orchestration only. Models they exchange live in ``workflows.models``."""
