"""What the ``openai`` executor asks for one run, worked out from the job's options
(:class:`~starpod_cron.models.ModelOptions`) over ``[executor]``'s: the messages (also what
the preview shows, :mod:`starpod_cron.preview`), the request options, the tools a run may
call, and the order in which models are asked:

- the job's model (else ``[executor] model``), then each of ``fallback_models`` in order when
  the provider says the model does not exist (:class:`~starpod_cron.errors.ModelNotFound`),
  or fails with a server error on the run's last attempt
  (:class:`~starpod_cron.errors.ProviderServerError`; earlier attempts are retried as usual);
- with ``escalate_to``: an answer beginning with ``[cron] escalate_token`` makes the same run
  ask that model the same messages; its answer is the result.

Every model that answered has its :class:`~starpod_cron.models.ModelUsage` in the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import tracing
from ..chat import ModelReply, ToolUse, converse
from ..errors import ModelNotFound, ProviderServerError
from ..models import JobContext, ModelUsage
from ..runprompt import ModelDefaults

log = logging.getLogger("starpod_cron.executors")


class Completer(Protocol):
    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        model: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ModelReply: ...


@dataclass(frozen=True, slots=True)
class _OneModel:
    """A :class:`~starpod_cron.chat.ChatModel` asking one model with one job's options."""

    completer: Completer
    model: str
    options: dict[str, Any]

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> ModelReply:
        return await self.completer.complete(
            messages, tools, model=self.model, options=self.options
        )


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    model: str
    usages: tuple[ModelUsage, ...]


async def ask(
    completer: Completer,
    ctx: JobContext,
    messages: list[dict[str, Any]],
    defaults: ModelDefaults,
    *,
    tools: ToolUse | None,
    escalate_token: str,
) -> Answer:
    """The run's answer: the job's model with its fallbacks, then (an answer beginning with
    ``escalate_token``) ``escalate_to`` with the same messages."""
    options = ctx.options
    body = defaults.request_options(options)
    usages: list[ModelUsage] = []
    models = (defaults.model_of(options), *options.fallback_models)
    text, model = await _first_answer(completer, ctx, models, messages, body, tools, usages)
    if options.escalate_to and text.lstrip().startswith(escalate_token):
        log.info("job %s: %s escalated to %s", ctx.job_name, model, options.escalate_to)
        models = (options.escalate_to,)
        text, model = await _first_answer(completer, ctx, models, messages, body, tools, usages)
    return Answer(text, model, tuple(usages))


async def _first_answer(
    completer: Completer,
    ctx: JobContext,
    models: Sequence[str],
    messages: list[dict[str, Any]],
    body: dict[str, Any],
    tools: ToolUse | None,
    usages: list[ModelUsage],
) -> tuple[str, str]:
    """The answer of the first of ``models`` that answers (each asked ``messages`` afresh)."""
    for i, model in enumerate(models):
        last = i == len(models) - 1
        one = _OneModel(completer, model, body)
        try:
            with tracing.model_call(ctx.run_id, model, body) as call:
                asked = list(messages)
                reply = await (
                    one.complete(asked) if tools is None else converse(one, asked, tools)
                )
                call.answered(reply.prompt_tokens, reply.completion_tokens, model)
        except ModelNotFound as exc:
            if last:
                raise
            log.warning("job %s: %s; falling back to %s", ctx.job_name, exc, models[i + 1])
            continue
        except ProviderServerError as exc:
            if last or not ctx.last_attempt:
                raise
            log.warning("job %s: %s; falling back to %s", ctx.job_name, exc, models[i + 1])
            continue
        usages.append(
            ModelUsage(model, reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens)
        )
        return reply.text, model
    raise AssertionError("no model to ask")  # models is never empty
