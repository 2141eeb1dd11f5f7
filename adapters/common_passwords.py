"""The list of common passwords new ones are checked against."""

from __future__ import annotations

from application.users import CommonPasswords


class CommonPasswordList(CommonPasswords):
    """The 30,000 most common passwords of zxcvbn (MIT; its list is drawn from leaked password sets),
    lower-cased."""

    def __init__(self) -> None:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS

        self._passwords = frozenset(password.lower() for password in FREQUENCY_LISTS["passwords"])

    def __contains__(self, password: str) -> bool:
        return password.lower() in self._passwords

    def __len__(self) -> int:
        return len(self._passwords)


class NoCommonPasswords(CommonPasswords):
    """The check switched off, for old clients whose users keep such passwords."""

    def __contains__(self, password: str) -> bool:
        return False
