"""Chat with the agent: a person's message goes to the model with the scheduling tools
(:mod:`starpod_cron.tools`), in a bounded tool-calling loop, in that person's one conversation
(the ``main`` session), and the model's answer comes back.

"remind me in 20 minutes to stretch" becomes a ``cron_add`` call the model makes; the job is
owned by that person and, from a Telegram chat, its results go back to that chat.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .access import Principal
from .errors import StarpodCronError
from .inputrules import check_text
from .operations import JobOperations
from .store.contract import SessionStore
from .timeutil import zone
from .tools import call_tool, openai_tools

log = logging.getLogger("starpod_cron.chat")

MAX_STEPS = 6
CHAT_SYSTEM = (
    "You are the user's assistant. You can schedule prompts for yourself to run later with the "
    "cron_* tools: when the user asks to be reminded, or for something to be done later or "
    "on a schedule, call cron_add with an instruction for your future self. Times are read in "
    "the user's time zone. Say briefly what you scheduled and when it runs next."
)


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One answer of the model: the raw assistant ``message`` (with any ``tool_calls``), its
    text, and the token counts it reported."""

    message: dict[str, Any]
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Of ``prompt_tokens``, those the provider served from its prompt cache (priced at
    ``cached_input_per_mtok``)."""


class ChatModel(Protocol):
    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> ModelReply: ...


@dataclass(frozen=True, slots=True)
class ToolUse:
    """The tools a conversation may call: through ``ops``, for ``who``, and new jobs come
    from ``origin`` (a Telegram chat: their results go back there)."""

    ops: JobOperations
    who: Principal
    origin: dict[str, Any] | None = None
    allowed: frozenset[str] | None = None
    """The tools it may call (None: every tool); others are offered nowhere and refused."""


async def converse(
    model: ChatModel, messages: list[dict[str, Any]], tools: ToolUse, max_steps: int = MAX_STEPS
) -> ModelReply:
    """Ask ``model``, run the tool calls it makes and ask again, until it answers with text
    or ``max_steps`` answers were tool calls (then it says it stopped). ``messages`` grows
    with the exchange. Token counts are summed over the steps."""
    definitions = openai_tools(only=tools.allowed)
    prompt_tokens = completion_tokens = cached_tokens = 0
    for _ in range(max_steps):
        reply = await model.complete(messages, tools=definitions)
        prompt_tokens += reply.prompt_tokens or 0
        completion_tokens += reply.completion_tokens or 0
        cached_tokens += reply.cached_tokens or 0
        calls = reply.message.get("tool_calls") or []
        if not calls:
            return ModelReply(
                reply.message, reply.text, prompt_tokens, completion_tokens, cached_tokens or None
            )
        messages.append({**reply.message, "content": reply.message.get("content") or ""})
        for call in calls:
            result = await _call(call, tools)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.get("id", ""),
                    "content": json.dumps(result, ensure_ascii=False),
                }
            )
    text = f"I stopped after {max_steps} tool steps without a final answer; please ask again."
    return ModelReply(
        {"role": "assistant", "content": text},
        text,
        prompt_tokens,
        completion_tokens,
        cached_tokens or None,
    )


async def _call(call: dict[str, Any], tools: ToolUse) -> dict[str, Any]:
    """One tool call's answer; a mistake (bad arguments, unknown job) is told to the model,
    which can correct itself."""
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    if tools.allowed is not None and name not in tools.allowed:
        allowed = ", ".join(sorted(tools.allowed)) or "none"
        return {"error": f"{name} is not allowed here (allowed: {allowed})"}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
        return await call_tool(tools.ops, name, arguments, user=tools.who, origin=tools.origin)
    except ValueError as exc:
        return {"error": f"the arguments of {name} are not valid JSON: {exc}"}
    except StarpodCronError as exc:
        log.info("tool %s for %s refused: %s", name, tools.who.user_id, exc)
        return {"error": str(exc)}


class AgentChat:
    """Answers a person's messages with the model and the scheduling tools, in their one
    conversation (session key ``user:<id>``), keeping the last ``max_history`` turns."""

    def __init__(
        self,
        model: ChatModel,
        ops: JobOperations,
        sessions: SessionStore,
        *,
        system_prompt: str = CHAT_SYSTEM,
        max_history: int = 20,
        max_steps: int = MAX_STEPS,
    ) -> None:
        self.model = model
        self.ops = ops
        self.sessions = sessions
        self.system_prompt = system_prompt
        self.max_history = max_history
        self.max_steps = max_steps

    async def reply(
        self, who: Principal, text: str, *, origin: dict[str, Any] | None = None
    ) -> str:
        """The model's answer to ``text`` from ``who`` (the tools act for ``who``). Text that
        cannot be stored (a lone surrogate, NUL) is InvalidInput before the model is asked."""
        check_text("the message", text)
        key = f"user:{who.user_id}" if who.user_id else "agent"
        session = await self.sessions.main_session_id(key)
        history = await self.sessions.session_messages(session, self.max_history)
        tz = await self.ops.default_zone(who)
        now = self.ops.now().astimezone(zone(tz))
        system = f"{self.system_prompt}\n\nNow: {_when(now)} ({tz})."
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        messages += [{"role": m.role, "content": m.content} for m in history]
        messages.append({"role": "user", "content": text})
        answer = await converse(
            self.model, messages, ToolUse(self.ops, who, origin), self.max_steps
        )
        await self.sessions.append_session_messages(
            session, [("user", text), ("assistant", answer.text)], keep=self.max_history
        )
        return answer.text


def _when(moment: datetime) -> str:
    return moment.strftime("%A %Y-%m-%d %H:%M")
