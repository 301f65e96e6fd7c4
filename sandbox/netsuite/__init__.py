"""The NetSuite emulator (REST record API v1, SuiteQL, Token-Based Authentication)."""
