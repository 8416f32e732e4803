"""Admin and coordinator tokens: random, shown once, stored only as a hash.

The tokens are 192 random bits, so a plain SHA-256 is enough (no password stretching is
needed), and a site is found by the hash through an index; the admin token is compared
with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_token", "new_token", "token_matches"]


def new_token() -> str:
    """192 random bits, URL-safe; never starting with `-`, which a command line (`--token -x…`)
    would read as an option."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)
