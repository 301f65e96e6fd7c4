"""Activities: one business step each, built in worker.py with their connectors."""
