"""Our own stores on each backend they support."""
