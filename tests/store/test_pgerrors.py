"""One mapping decides which PostgreSQL driver errors mean "store unavailable" (retried by every
background task) and which are about the statement (a bug or bad data, raised as they are)."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions import _base

from starpod_cron.store.pgerrors import is_connection_error, unavailable

CONNECTION = [
    _base.InternalClientError("cannot switch to state 15; another operation is in progress"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.ConnectionFailureError("connection failure"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("crash shutdown"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
]
STATEMENT = [
    asyncpg.DataError("invalid input for query argument $1"),
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.PostgresSyntaxError("syntax error"),
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.OutdatedSchemaCacheError("cached statement plan is invalid"),
    ValueError("not a driver error"),
]


@pytest.mark.parametrize("exc", CONNECTION, ids=lambda e: type(e).__name__)
def test_connection_level_errors_are_store_unavailable(exc: BaseException) -> None:
    assert is_connection_error(exc)
    assert type(exc).__name__ in str(unavailable(exc, "postgresql://db/x"))


@pytest.mark.parametrize("exc", STATEMENT, ids=lambda e: type(e).__name__)
def test_statement_errors_are_not(exc: BaseException) -> None:
    assert not is_connection_error(exc)
