"""The fake database a rotation function stand-in rotates: users and their current passwords, and a login check."""

from __future__ import annotations

import threading


class FakeDatabase:
    """Users → current password. What a rotation function can do to a real database, and nothing more.

    `login` is the only question a rotation template asks its database ("does this credential work?");
    `set_password` is what the templates' setSecret runs: `ALTER USER ... WITH PASSWORD` (single user: the user
    on itself; alternating users: the master), or `CREATE ROLE ... WITH LOGIN PASSWORD` for a user not there yet.
    """

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self._users = dict(users or {})
        self._lock = threading.Lock()

    def login(self, username: str, password: str) -> bool:
        with self._lock:
            return username in self._users and self._users[username] == password

    def has_user(self, username: str) -> bool:
        with self._lock:
            return username in self._users

    def set_password(self, username: str, password: str) -> None:
        """ALTER USER; creates the user when missing, as the alternating template's master does (CREATE ROLE)."""
        with self._lock:
            self._users[username] = password

    def accepts(self, password: str) -> bool:
        """True when some user's current password is `password`."""
        with self._lock:
            return password in self._users.values()
