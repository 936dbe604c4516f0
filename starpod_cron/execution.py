"""What an executor is given for one run and what it gives back: :class:`JobContext` (with the
job's :class:`ModelOptions`), :class:`JobResult` and its :class:`ModelUsage` per model asked.
Re-exported by :mod:`starpod_cron.models`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


class SessionMode(enum.StrEnum):
    """``isolated``: every run gets a fresh session; ``main``: runs share one conversation."""

    ISOLATED = "isolated"
    MAIN = "main"


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """What a job says about its model call (:mod:`starpod_cron.execfields`); each None or
    empty means "as ``[executor]`` says". ``tools`` None: not set (``[executor]
    allow_scheduling_from_runs`` decides); ``()``: none."""

    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    fallback_models: tuple[str, ...] = ()
    escalate_to: str | None = None
    tools: tuple[str, ...] | None = None

    @classmethod
    def given(
        cls,
        model: str | None,
        system_prompt: str | None,
        temperature: float | None,
        max_tokens: int | None,
        fallback_models: Sequence[str] | None,
        escalate_to: str | None,
        tools: Sequence[str] | None,
    ) -> ModelOptions:
        """The options of a job's fields (lists as tuples)."""
        return cls(
            model,
            system_prompt,
            temperature,
            max_tokens,
            tuple(fallback_models or ()),
            escalate_to,
            None if tools is None else tuple(tools),
        )


NO_OPTIONS = ModelOptions()


@dataclass(frozen=True, slots=True)
class JobContext:
    """What an executor receives for one run."""

    prompt: str
    session_mode: SessionMode
    job_name: str
    job_id: str
    user_id: str | None
    run_id: str
    attempt: int
    scheduled_for: datetime
    one_shot: bool = False
    """The job runs once (a reminder): its answer is always delivered, so an executor never
    offers it the silent token."""
    previous_result: str | None = None
    """With ``context = "last"``: the job's previous successful result (never a silent
    answer), or None when it has none yet. Always None with ``context = "none"``."""
    previous_at: datetime | None = None
    """When the run that gave ``previous_result`` ended."""
    options: ModelOptions = NO_OPTIONS
    """What the job says about its model call (model, fallbacks, tools...)."""
    last_attempt: bool = True
    """No retry follows this attempt if it fails (a server error then falls back at once)."""


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What one model call (or several calls to one model) of a run used: the model's name as
    the provider answered to it, and its token counts (None: not reported). A run that falls
    back or escalates has one per model it asked; costs come from these (see
    :mod:`starpod_cron.pricing`)."""

    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Of ``prompt_tokens``, those the provider served from its prompt cache."""


@dataclass(frozen=True, slots=True)
class JobResult:
    """What an executor returns on success.

    ``summary`` is the run's result text: stored on the run (up to 256 KiB) and cut to 500
    characters for notifiers. Token counts, when the model reports them, are stored too.
    ``model`` is the model whose answer is the result (None: no model, e.g. a command);
    ``usages`` what each model asked used (the token counts above are their sums).
    """

    session_id: str
    summary: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    usages: tuple[ModelUsage, ...] = ()
