"""Workflow tests run the real worker (``worker`` fixture in tests/conftest.py: real activities, real
connectors) against the real Temporal dev server and the emulators over HTTP, each on its own task queue.
Saved histories and their replay: tests/helpers/histories.py."""
