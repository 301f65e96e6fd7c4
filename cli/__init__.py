"""The operator command line behind starter.py, one module per command group."""
