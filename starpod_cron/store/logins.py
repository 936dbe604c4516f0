"""Dashboard log-in sessions, backend-free: new ids, their hashes, checks and rows.

A session id is 128 random bits (``secrets.token_urlsafe(16)``: 22 URL-safe characters). Only
its SHA-256 reaches the database, so reading the table (a backup, a leaked dump) gives nobody a
way in; the id itself exists only in the browser's cookie.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput
from ..models import LoginSession
from ..timeutil import from_ms

ID_BYTES = 16
"""128 bits."""
TOUCH_MS = 60_000
"""``last_used_at`` is rewritten at most once a minute per session (not on every request)."""
MIN_TTL_SECS = 1.0
MAX_TTL_SECS = 366 * 86_400.0
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def new_session() -> tuple[str, str]:
    """A new session id and its stored key (its SHA-256, hex)."""
    session_id = secrets.token_urlsafe(ID_BYTES)
    return session_id, hashlib.sha256(session_id.encode("ascii")).hexdigest()


def id_hash(session_id: str) -> str | None:
    """The stored key of ``session_id``, or None when it cannot be one of ours (wrong length
    or characters): such a cookie is unknown without asking the database."""
    if not isinstance(session_id, str) or _ID.fullmatch(session_id) is None:
        return None
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def check_new(user_id: str, token_fingerprint: str, ttl_secs: float) -> int:
    """Validate a new session's fields; returns its lifetime in milliseconds."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInput("a login session needs a user id")
    if not isinstance(token_fingerprint, str) or not _FINGERPRINT.fullmatch(token_fingerprint):
        raise InvalidInput("a login session needs its token's fingerprint (64 hex digits)")
    if not MIN_TTL_SECS <= ttl_secs <= MAX_TTL_SECS:
        raise InvalidInput(
            f"a login session lasts from {MIN_TTL_SECS:g} to {MAX_TTL_SECS:g} seconds, "
            f"got {ttl_secs:g}"
        )
    return int(ttl_secs * 1000)


def session_from_row(row: Sequence[Any]) -> LoginSession:
    """``(user_id, token_fingerprint, created_at, expires_at, last_used_at)``."""
    user, fingerprint, created, expires, used = row
    return LoginSession(
        str(user),
        str(fingerprint),
        from_ms(int(created)),
        from_ms(int(expires)),
        from_ms(int(used)),
    )
