"""Business observability: Prometheus metrics, OpenTelemetry tracing, the KPIs read from the running system,
and the documentation generated from the code (field mapping, integration catalogue)."""
