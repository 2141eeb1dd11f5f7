"""The composition root and the driving adapters (HTTP APIs, CLI)."""
