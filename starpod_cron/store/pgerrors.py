"""Which asyncpg errors mean "PostgreSQL cannot be used right now", in one place.

Every path of the PostgreSQL store (pool acquisition, queries, transactions, the LISTEN
connection, opening the store) maps errors through :func:`is_connection_error` and
:func:`unavailable`, so a connection reset (``pg_terminate_backend``, a failover, a pooler
restart, a server shutting down) is always a :class:`StoreUnavailable` that callers retry,
never a raw driver exception that ends a background task.

Connection-level errors are:

- ``OSError`` (connection refused, reset, no route) and timeouts;
- asyncpg's client-side errors about the connection: ``InterfaceError`` (``connection is
  closed``, ``another operation is in progress``) but not its subclasses about the data or the
  configuration (``DataError``, ``ClientConfigurationError``, unsupported features), and
  ``InternalClientError`` (``cannot switch to state 15``, a protocol left mid-operation by a
  reset) but not ``OutdatedSchemaCacheError``;
- server errors of SQLSTATE class 08 (connection exception: ``ConnectionDoesNotExistError``,
  ``ConnectionFailureError``...), class 57P (``AdminShutdownError``, ``CrashShutdownError``,
  ``CannotConnectNowError``: the server is going away or starting), 53300 (too many
  connections), and the refusals of a login (28xxx, 3D000) when opening.
"""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from ..errors import StoreUnavailable
from ..logs import redact

_NOT_CONNECTION = (
    asyncpg.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg_base.UnsupportedClientFeatureError,
    asyncpg_base.UnsupportedServerFeatureError,
    asyncpg.exceptions.OutdatedSchemaCacheError,
)
_CLIENT = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg_base.InternalClientError)
_SQLSTATE_PREFIXES = ("08", "57P", "28", "3D000", "53300")

RETRIED = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
"""Races a transaction lost; the transaction is run again. (A unique key is no race: every
insert that two nodes may race for says what to do on conflict in its SQL, so a claim of an
occurrence another node recorded first simply drops it.)"""


def is_connection_error(exc: BaseException) -> bool:
    """True if ``exc`` says the connection (or the server) is unusable, not the statement."""
    if isinstance(exc, _NOT_CONNECTION):
        return False
    if isinstance(exc, _CLIENT):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith(_SQLSTATE_PREFIXES)
    return False


def why(exc: BaseException) -> str:
    """The first line of ``exc``'s message, redacted, for a log line or an error message."""
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])


def unavailable(exc: BaseException, where: str) -> StoreUnavailable:
    """The :class:`StoreUnavailable` to raise for connection error ``exc`` at ``where``."""
    return StoreUnavailable(f"PostgreSQL at {where}: {why(exc)} ({type(exc).__name__})")
