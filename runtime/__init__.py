"""Temporal plumbing: the client and data converter, search-attribute registration, dev-server binaries,
schedules, and starting flows by business key."""
