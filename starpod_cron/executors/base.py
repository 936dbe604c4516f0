"""What every built-in executor shares: the protocol, session ids and the execution note."""

from __future__ import annotations

import uuid
from typing import Protocol

from ..models import JobContext, JobResult, SessionMode
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


def silent_note(ctx: JobContext, token: str) -> str:
    """What a recurring job's run is told about the silent token (``[cron] silent_token``):
    when there is nothing worth reporting, answer exactly that, and nobody is bothered. Empty
    for a one-shot, whose answer is always delivered."""
    if ctx.one_shot:
        return ""
    return (
        "This job runs again and again. If this time there is nothing worth reporting (nothing "
        f"new, nothing changed, nothing needs attention), answer exactly {token} and nothing "
        "else: the run is recorded and nobody is notified. Otherwise answer with the report."
    )


def execution_note(ctx: JobContext, *, tools: bool = False) -> str:
    """The context a scheduled run adds to the system prompt (``tools``: it may call cron
    tools, so it is not told to leave jobs alone)."""
    text = (
        f"This is an automated, scheduled run of the job {ctx.job_name!r} "
        f"(run {ctx.run_id}, attempt {ctx.attempt}, scheduled for "
        f"{ctx.scheduled_for.isoformat()}). No user is watching or able to answer questions. "
        "Do the task and reply with the result."
    )
    return text if tools else text + " Do not create, change or schedule jobs."
