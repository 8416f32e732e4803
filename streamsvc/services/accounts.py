"""Users, signing in and out, and who a bearer token is.

Passwords are kept only as argon2id hashes (argon2-cffi's defaults: 64 MiB, three passes),
hashed on worker threads, two at a time, so a burst of sign-ins neither blocks the event loop
nor takes all the memory. Failed sign-ins are counted from the audit log itself, in the shared
database, so the limits hold on every instance at once; so do revocations and deactivations,
since every request reads its token's row.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from streamsvc.domain.models import ROLES, AuditEntry, Site, User
from streamsvc.domain.policy import Caller, Principal, can_manage_user
from streamsvc.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from streamsvc.ports import Store
from streamsvc.services.tokens import hash_token, new_token, token_matches

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES_PER_ADDRESS",
    "MAX_FAILURES_PER_LOGIN",
    "TOKEN_LIFETIME",
    "AccountService",
    "user_json",
]

TOKEN_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_LOGIN = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
LOGIN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: Actors the audit log names that are not users: a user called so would read as them.
RESERVED_LOGINS = frozenset({"admin-token", "cli", "demo"})
USER_FIELDS = ("full_name", "unit", "role", "active", "password")


def user_json(user: User) -> dict[str, Any]:
    """A user as the API shows it: never the password or its hash."""
    return {
        "login": user.login,
        "full_name": user.full_name,
        "unit": user.unit,
        "role": user.role,
        "active": user.active,
    }


def _shown(value: object) -> str:
    """A changed value as the audit log shows it (`true`/`false`, as in the API)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _bad_credentials() -> Unauthorized:
    return Unauthorized("wrong login or password", code="bad_credentials")


def _password(value: Any) -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", {"field": "password"}
        )
    return value


def _text(value: Any, field: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidInput(
            f"{field} must be a non-empty string of at most {limit} characters", {"field": field}
        )
    return value.strip()


class AccountService:
    def __init__(
        self,
        store: Store,
        admin_hash: str,
        site_for_token: Callable[[str], Awaitable[Site]],
        *,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.admin_hash = admin_hash
        self._site_for_token = site_for_token
        self._hasher = hasher or PasswordHasher()
        self._hashing = asyncio.Semaphore(2)
        self._dummy: str | None = None

    # -- passwords ------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        async with self._hashing:
            try:
                return await asyncio.to_thread(self._hasher.verify, stored, password)
            except (VerificationError, InvalidHashError):
                return False

    # -- who is asking --------------------------------------------------------------------

    async def principal(self, token: str) -> Principal:
        """The admin token, a signed-in user's token, or a site's token; else 401."""
        if not token or len(token) > 200:
            raise Unauthorized("send Authorization: Bearer <token>")
        if token_matches(token, self.admin_hash):
            return Principal.admin_token()
        digest = hash_token(token)
        row = await self.store.auth_token(digest)
        if row is not None:
            user, expires_at, revoked_at = row
            if revoked_at is not None:
                raise Unauthorized("this sign-in has ended; sign in again")
            if expires_at <= datetime.now(UTC):
                raise Unauthorized("this sign-in has expired; sign in again")
            if not user.active:
                raise Unauthorized("this account has been deactivated")
            return Principal.of_user(user, digest)
        try:
            site = await self._site_for_token(token)
        except Unauthorized:
            raise Unauthorized("unknown or expired token") from None
        return Principal.of_site(site.id)

    async def token_holds(self, token: str) -> bool:
        """Whether a sign-in token still holds, read from the store: a revocation may have
        been missed while the control bus was away (`Revocations.recheck`)."""
        try:
            await self.principal(token)
        except Unauthorized:
            return False
        return True

    # -- signing in and out ---------------------------------------------------------------

    async def login(self, body: Any, address: str | None) -> tuple[str, datetime, User]:
        """(token, expires_at, user). Past the limits the answer is 429 even for the right
        password, so guessing gains nothing from the limit's edge."""
        if not isinstance(body, dict):
            raise InvalidInput('the body must be {"login", "password"}')
        login, password = body.get("login"), body.get("password")
        if not isinstance(login, str) or not isinstance(password, str) or not login:
            raise InvalidInput("login and password are required strings")
        if len(login) > 200 or len(password) > MAX_PASSWORD or "\x00" in login:
            raise _bad_credentials()
        await self._check_limits(login, address, datetime.now(UTC))
        user = await self.store.get_user(login)
        if user is None:
            # the same work as for a real user, so the answer's time tells nothing
            self._dummy = self._dummy or await self.hash_password(new_token())
            await self._verify(self._dummy, password)
            ok = False
        else:
            ok = await self._verify(user.password_hash, password) and user.active
        # Again after hashing, whatever the outcome: guesses sent at once all pass the first
        # check before any failure is written, and wait here for a hasher meanwhile.
        now = datetime.now(UTC)
        await self._check_limits(login, address, now)
        if not ok or user is None:
            await self.store.append_audit(
                [self._entry("login_failed", now, login, address, user.unit if user else None)]
            )
            raise _bad_credentials()
        token = new_token()
        expires_at = now + TOKEN_LIFETIME
        await self.store.add_auth_token(
            hash_token(token),
            user.login,
            now,
            expires_at,
            audit=self._entry("login", now, user.login, address, user.unit),
        )
        return token, expires_at, user

    async def _check_limits(self, login: str, address: str | None, now: datetime) -> None:
        by_login, by_address = await self.store.recent_failures(
            login, address, now - FAILURE_WINDOW
        )
        waits = []
        for times, limit in (
            (by_login, MAX_FAILURES_PER_LOGIN),
            (by_address, MAX_FAILURES_PER_ADDRESS),
        ):
            if len(times) >= limit:
                # the limit-th newest failure leaves the window first among those that count
                edge = sorted(times, reverse=True)[limit - 1]
                waits.append(edge + FAILURE_WINDOW - now)
        if waits:
            wait = max(1, int(max(waits).total_seconds() + 0.999))
            raise TooManyAttempts(
                f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
            )

    @staticmethod
    def _entry(
        action: str, at: datetime, login: str, address: str | None, unit: str | None
    ) -> AuditEntry:
        return AuditEntry(
            at=at, actor=login, action=action, target=login, address=address, unit=unit
        )

    async def logout(self, caller: Caller) -> None:
        who = caller.who
        if who.token_hash is None:
            raise InvalidInput("only a signed-in user's token can be signed out")
        now = datetime.now(UTC)
        await self.store.revoke_auth_token(
            who.token_hash, now, audit=caller.entry("logout", now, target=who.actor, unit=who.unit)
        )

    # -- users ----------------------------------------------------------------------------

    async def list_users(self, caller: Caller) -> list[User]:
        caller.allow("admin")
        return [u for u in await self.store.list_users() if caller.scope.covers(u.unit)]

    async def create_user(self, caller: Caller, body: Any, units: set[str]) -> User:
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        login = body.get("login")
        if isinstance(login, str) and login.lower() in RESERVED_LOGINS:
            raise InvalidInput(
                f"login {login} is reserved: the audit log names the admin token and the "
                "command line so",
                {"field": "login"},
            )
        if not isinstance(login, str) or not LOGIN_PATTERN.fullmatch(login):
            raise InvalidInput(
                "login must be 1-64 letters, digits or . _ @ - (starting with a letter or digit)",
                {"field": "login"},
            )
        fields = self._fields(body, units, required=True)
        user = User(
            login=login,
            full_name=fields["full_name"],
            unit=fields["unit"],
            role=fields["role"],
            active=fields.get("active", True),
        )
        can_manage_user(caller.who, caller.scope, user, {"unit": user.unit, "role": user.role})
        user = replace(user, password_hash=await self.hash_password(fields["password"]))
        now = datetime.now(UTC)
        entry = caller.entry(
            "user_created", now, target=login, detail=f"role {user.role}", unit=user.unit
        )
        if not await self.store.create_user(user, audit=entry):
            raise Conflict(f"login {login} is taken", {"field": "login"}, code="login_taken")
        return user

    async def update_user(
        self, caller: Caller, login: str, body: Any, units: set[str]
    ) -> tuple[User, list[str]]:
        """The changed user and the hashes of the tokens the change revoked."""
        if not isinstance(body, dict) or not body:
            raise InvalidInput(
                f"the body must be a JSON object with some of {', '.join(USER_FIELDS)}"
            )
        unknown = sorted(set(body) - set(USER_FIELDS))
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(unknown)}", {"fields": unknown})
        user = await self.store.get_user(login)
        if user is None:
            raise NotFound(f"no user {login}", code="unknown_user")
        if not (caller.scope.covers(user.unit) or caller.who.actor == login):
            raise Forbidden(f"user {login} is outside your scope")
        changes = self._fields(body, units, required=False)
        can_manage_user(caller.who, caller.scope, user, changes)
        new = replace(
            user,
            full_name=changes.get("full_name", user.full_name),
            unit=changes.get("unit", user.unit),
            role=changes.get("role", user.role),
            active=changes.get("active", user.active),
        )
        if "password" in changes:
            new = replace(new, password_hash=await self.hash_password(changes["password"]))
        now = datetime.now(UTC)
        revoke = "password" in changes or (user.active and not new.active)
        detail = ", ".join(
            k
            if k == "password"
            else f"{k}: {_shown(getattr(user, k))} -> {_shown(getattr(new, k))}"
            for k in USER_FIELDS
            if k in changes
        )
        entry = caller.entry("user_changed", now, target=login, detail=detail, unit=new.unit)
        revoked = await self.store.save_user(
            new, revoke_tokens_at=now if revoke else None, audit=entry
        )
        return new, revoked

    @staticmethod
    def _fields(body: dict[str, Any], units: set[str], *, required: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("full_name", "unit", "role", "password"):
            if key not in body:
                if required:
                    raise InvalidInput(f"{key} is required", {"field": key})
                continue
            value = body[key]
            if key == "full_name":
                out[key] = _text(value, key)
            elif key == "unit":
                if not isinstance(value, str) or value not in units:
                    raise NotFound(
                        f"unit {value} does not exist", {"field": "unit"}, code="unknown_unit"
                    )
                out[key] = value
            elif key == "role":
                if value not in ROLES:
                    raise InvalidInput(f"role must be one of {', '.join(ROLES)}", {"field": "role"})
                out[key] = value
            else:
                out[key] = _password(value)
        if "active" in body:
            if not isinstance(body["active"], bool):
                raise InvalidInput("active must be true or false", {"field": "active"})
            out["active"] = body["active"]
        return out
