"""Domain and application errors. Plain exceptions: the entrypoints map them to wire answers."""


class DomainError(Exception):
    """Base for every error a use case may raise on purpose."""


class InvalidEmail(DomainError):
    pass


class InvalidPassword(DomainError):
    pass


class InvalidPostText(DomainError):
    pass


class PostTooLarge(DomainError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"post text is {size} bytes, the limit is {limit}")
        self.size = size
        self.limit = limit


class UserAlreadyExists(DomainError):
    pass


class InvalidCredentials(DomainError):
    """Unknown email or wrong password: deliberately indistinguishable."""


class NotAuthenticated(DomainError):
    """A missing, malformed, expired or forged token, or one naming no current user."""

    def __init__(self, reason: str = "Could not validate credentials") -> None:
        super().__init__(reason)
        self.reason = reason


class PostQuotaExceeded(DomainError):
    """The user already holds as many posts, or bytes of text, as they may."""


class WrongPassword(DomainError):
    """The caller's current password, asked for again before a sensitive change, did not match."""


class InvalidRefreshToken(DomainError):
    """Unknown, expired, already used, or of a session that has ended."""


class SessionNotFound(DomainError):
    """No live session with that id belongs to the caller."""


class PostNotFound(DomainError):
    """No post with that id belongs to the caller (it may exist and belong to someone else)."""


class InfrastructureError(Exception):
    """Something the service relies on failed: no rule was broken, and the request may succeed later."""


class StorageUnavailable(InfrastructureError):
    """The database could not be reached or did not answer in time (the storage ports raise it)."""
