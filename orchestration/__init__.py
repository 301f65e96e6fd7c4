"""Temporal plumbing shared by worker, starter, ingress and tests: search attributes, client, dev server."""
