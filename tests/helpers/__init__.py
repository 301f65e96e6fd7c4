"""Test helpers: servers on loopback, Prism contract proxies, data builders."""
