"""The HTTP driving adapters: the canonical API under /api/v1 and the compatibility API."""
