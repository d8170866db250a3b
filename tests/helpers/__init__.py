"""Reusable test helpers (real services started by tests)."""
