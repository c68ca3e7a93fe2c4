"""User accounts, password hashing (argon2), login sessions and failed-login limiting."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from citywatch.governance.roles import Role
from citywatch.store.db import Database
from citywatch.store.models import AuthSession, User

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,100}$")
MIN_PASSWORD = 10


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """The logged-in user, as request handlers see it."""

    user_id: int
    username: str
    role: Role
    camera_ids: frozenset[str] | None  # None: every camera

    def may_see(self, camera_id: str) -> bool:
        return self.camera_ids is None or camera_id in self.camera_ids


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")


class LoginLimiter:
    """At most `max_failures` failed logins per (username, client) in `window_s`."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until another try is allowed; 0 if allowed now."""
        now = time.monotonic()
        with self._lock:
            q = self._failures.get((username.lower(), client))
            if not q:
                return 0.0
            while q and now - q[0] > self.window_s:
                q.popleft()
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - q[0]))

    def failed(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.setdefault((username.lower(), client), deque()).append(time.monotonic())

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), client), None)


class Accounts:
    def __init__(self, db: Database, session_hours: float = 12.0) -> None:
        self._db = db
        self._hasher = PasswordHasher()
        self.session_seconds = session_hours * 3600
        self.limiter = LoginLimiter()

    # users -----------------------------------------------------------------
    def create_user(
        self, username: str, password: str, role: str, camera_ids: list[str] | None = None
    ) -> User:
        if not USERNAME.match(username):
            raise AccountError("username must be 2-100 letters, digits or . _ @ -")
        try:
            role_value = Role(role)
        except ValueError:
            raise AccountError(f"unknown role {role!r}; one of {[r.value for r in Role]}") from None
        check_password_strength(password)
        with self._db.session() as s, s.begin():
            if s.scalar(select(User).where(User.username == username)) is not None:
                raise AccountError(f"user {username!r} already exists")
            user = User(
                username=username,
                password_hash=self._hasher.hash(password),
                role=role_value.value,
                camera_ids=sorted(camera_ids) if camera_ids is not None else None,
                disabled=False,
                created_at=time.time(),
            )
            s.add(user)
        return user

    def get(self, username: str) -> User | None:
        with self._db.session() as s:
            return s.scalar(select(User).where(User.username == username))

    def list_users(self) -> list[User]:
        with self._db.session() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def count(self) -> int:
        return len(self.list_users())

    def update_user(
        self,
        username: str,
        *,
        role: str | None = None,
        camera_ids: list[str] | None | bool = False,
        disabled: bool | None = None,
    ) -> User:
        """camera_ids=False leaves the camera limit unchanged; None lifts it."""
        with self._db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AccountError(f"no user {username!r}")
            if role is not None:
                try:
                    user.role = Role(role).value
                except ValueError:
                    raise AccountError(f"unknown role {role!r}") from None
            if camera_ids is not False:
                user.camera_ids = sorted(camera_ids) if isinstance(camera_ids, list) else None
            if disabled is not None:
                user.disabled = disabled
                if disabled:
                    s.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        return user

    def set_password(self, username: str, password: str) -> None:
        check_password_strength(password)
        with self._db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AccountError(f"no user {username!r}")
            user.password_hash = self._hasher.hash(password)
            s.execute(delete(AuthSession).where(AuthSession.user_id == user.id))

    def delete_user(self, username: str) -> None:
        with self._db.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise AccountError(f"no user {username!r}")
            s.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
            s.delete(user)

    # sessions --------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> User | None:
        user = self.get(username)
        if user is None or user.disabled:
            # Spend the same time as a real check, so timing does not reveal who exists.
            self._hasher.hash(password)
            return None
        try:
            self._hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def open_session(self, user: User, client: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._db.session() as s, s.begin():
            s.add(
                AuthSession(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + self.session_seconds,
                    client=client[:100],
                )
            )
        return token

    def resolve(self, token: str) -> Principal | None:
        now = time.time()
        with self._db.session() as s:
            row = s.get(AuthSession, _token_hash(token))
            if row is None or row.expires_at < now:
                return None
            user = s.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            cams = frozenset(user.camera_ids) if user.camera_ids is not None else None
            return Principal(user.id, user.username, Role(user.role), cams)

    def close_session(self, token: str) -> None:
        with self._db.session() as s, s.begin():
            s.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))

    def purge_expired(self) -> int:
        with self._db.session() as s, s.begin():
            res = s.execute(delete(AuthSession).where(AuthSession.expires_at < time.time()))
            return int(getattr(res, "rowcount", 0) or 0)
