"""What every built-in executor shares: the protocol, session ids and the execution note."""

from __future__ import annotations

import uuid
from typing import Protocol

from ..models import JobContext, JobResult, SessionMode
from ..runprompt import execution_note as execution_note
from ..runprompt import silent_note as silent_note
from ..store.contract import SessionStore


class BuiltExecutor(Protocol):
    """An executor made from ``[executor]`` config: call it per run, close it at shutdown."""

    description: str
    notes: tuple[str, ...]
    """Things to tell the user at start-up (a missing API key, say)."""

    async def __call__(self, ctx: JobContext) -> JobResult: ...

    async def aclose(self) -> None: ...


def session_key(ctx: JobContext) -> str:
    """Whose conversation a ``main``-mode run continues: its user's, or the agent's."""
    return f"user:{ctx.user_id}" if ctx.user_id else "agent"


async def session_for(ctx: JobContext, store: SessionStore) -> str:
    """``isolated``: a fresh id every run; ``main``: the persistent conversation's id."""
    if ctx.session_mode is SessionMode.MAIN:
        return await store.main_session_id(session_key(ctx))
    return f"isolated-{uuid.uuid4().hex}"
