"""Observability: logs (and metrics, later)."""
