"""Failures of what the application relies on outside the domain."""

from domain.errors import InfrastructureError


class CacheUnavailable(InfrastructureError):
    """The cache could not be reached; callers fall back to the database."""
