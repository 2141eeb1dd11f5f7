"""The list of common passwords new ones are checked against."""

from __future__ import annotations

from pathlib import Path

from application.users import CommonPasswords

LIST = Path(__file__).with_name("common_passwords.txt")


class CommonPasswordList(CommonPasswords):
    """The 30,000 most common passwords of zxcvbn (MIT; its list is drawn from leaked password sets),
    lower-cased, read from `LIST`."""

    def __init__(self, path: Path = LIST) -> None:
        with path.open(encoding="ascii") as lines:
            self._passwords = frozenset(
                line.rstrip("\n") for line in lines if line.strip() and not line.startswith("#")
            )

    def __contains__(self, password: str) -> bool:
        return password.lower() in self._passwords

    def __len__(self) -> int:
        return len(self._passwords)


class NoCommonPasswords(CommonPasswords):
    """The check switched off, for old clients whose users keep such passwords."""

    def __contains__(self, password: str) -> bool:
        return False
