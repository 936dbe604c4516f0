"""The ``openai`` executor: one chat completion per run against any OpenAI-compatible server
(OpenAI, Ollama, vLLM, llama.cpp) through one pooled ``httpx.AsyncClient``.

Every answer's rate-limit headers go to the executor's :class:`~starpod_cron.pacing.Pacer`,
which the scheduler paces its calls by. A quota or billing refusal (402, ``insufficient_quota``)
holds the run (:class:`~starpod_cron.errors.ProviderHeld`) until the provider's reset.
Failures are classified for the scheduler: 429 and 503 mean the provider is saturated
(:class:`~starpod_cron.errors.ProviderSaturated`: the scheduler holds back and retries the call
after ``Retry-After``, in the same attempt); connection errors, timeouts, 408 and other 5xx are
transient (a failed attempt, retried with backoff, honouring ``Retry-After``); any other 4xx
is permanent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from ..access import LOCAL_ADMIN, Principal
from ..chat import ModelReply, ToolUse, converse
from ..errors import PermanentJobError, ProviderHeld, ProviderSaturated, TransientJobError
from ..models import JobContext, JobResult, SessionMode
from ..operations import JobOperations
from ..pacing import Pacer
from ..ratelimits import parse, quota_refused, retry_after_secs
from ..settings import SILENT_TOKEN
from ..store.contract import SessionStore
from .base import execution_note, session_for, silent_note

log = logging.getLogger("starpod_cron.executors")

_TRANSIENT_STATUS = {408, 425}
_SATURATED_STATUS = {429, 503}
POOLS = 64  # backpressure: retried in the same attempt, not failures


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def previous_result_messages(ctx: JobContext) -> list[dict[str, Any]]:
    """With ``context = "last"``: one message giving the job's previous result and its time,
    sent just before the prompt (none when the job has no previous result)."""
    if ctx.previous_result is None:
        return []
    when = ctx.previous_at.isoformat() if ctx.previous_at is not None else "an earlier run"
    text = (
        f"The previous run of this job ended at {when} with this result (compare with it if "
        f"the task asks what changed):\n\n{ctx.previous_result}"
    )
    return [{"role": "system", "content": text}]


class OpenAIExecutor:
    def __init__(
        self,
        store: SessionStore,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        system_prompt: str = "",
        request_timeout_secs: float = 600,
        max_history_messages: int = 20,
        temperature: float | None = None,
        max_tokens: int | None = None,
        run_tools: JobOperations | None = None,
        silent_token: str = SILENT_TOKEN,
    ) -> None:
        """``silent_token``: the answer a recurring job's run may give when it has nothing to
        report (the store's ``[cron] silent_token``, which records such a run as silent)."""
        self._store = store
        self._silent_token = silent_token
        self._model = model
        self._system_prompt = system_prompt
        self._timeout = request_timeout_secs
        self._max_history = max_history_messages
        self._options: dict[str, Any] = {}
        if temperature is not None:
            self._options["temperature"] = temperature
        if max_tokens is not None:
            self._options["max_tokens"] = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._base_url = base_url.rstrip("/")
        # Several small connection pools, each call on the least busy one: httpx's pool scans
        # all its connections on every request (expiry checks), so one pool of hundreds of
        # connections spends more time scanning than sending. The scheduler bounds the calls
        # in flight (max_concurrent_runs, then the adaptive limit), not the pools.
        tls = httpx.create_ssl_context()  # one for every pool (each costs ~30 ms to build)
        self._clients = [
            httpx.AsyncClient(
                base_url=self._base_url + "/",
                headers=headers,
                timeout=httpx.Timeout(request_timeout_secs),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                verify=tls,
            )
            for _ in range(POOLS)
        ]
        self._busy = [0] * POOLS
        self.pacer = Pacer()
        """The provider's rate limits as its answers announce them: the scheduler paces
        this executor's calls by it (:mod:`starpod_cron.pacing`)."""
        self.description = f"openai ({model} at {self._base_url})"
        self.notes: tuple[str, ...] = ()
        self.run_tools = run_tools
        """With ``allow_scheduling_from_runs``: the operations a scheduled run's tool calls
        go through (as the job's owner). None (the default): runs get no tools."""

    async def __call__(self, ctx: JobContext) -> JobResult:
        session_id = await session_for(ctx, self._store)
        main = ctx.session_mode is SessionMode.MAIN
        history = await self._store.session_messages(session_id, self._max_history) if main else []
        notes = (self._system_prompt, execution_note(ctx), silent_note(ctx, self._silent_token))
        system = "\n\n".join(p for p in notes if p)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        messages += [{"role": m.role, "content": m.content} for m in history]
        messages += previous_result_messages(ctx)
        messages.append({"role": "user", "content": ctx.prompt})
        if self.run_tools is None:  # the default: a scheduled run cannot schedule
            reply = await self.complete(messages)
        else:
            who = Principal(ctx.user_id) if ctx.user_id else LOCAL_ADMIN
            reply = await converse(self, messages, ToolUse(self.run_tools, who))
        if main:
            await self._store.append_session_messages(
                session_id,
                [("user", ctx.prompt), ("assistant", reply.text)],
                run_id=ctx.run_id,
                keep=self._max_history,
            )
        return JobResult(session_id, reply.text, reply.prompt_tokens, reply.completion_tokens)

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> ModelReply:
        """One chat completion (with ``tools`` offered, if given). Errors are classified:
        TransientJobError (retry) or PermanentJobError."""
        body: dict[str, Any] = {"model": self._model, "messages": messages, **self._options}
        if tools:
            body["tools"] = tools
        try:
            response = await self._post(body)
        except httpx.TimeoutException as exc:
            raise TransientJobError(
                f"model server at {self._base_url} did not answer within {self._timeout:g}s "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientJobError(
                f"cannot reach model server at {self._base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status_code
        if status >= 400 and quota_refused(status, response.text):
            raise ProviderHeld(
                f"provider quota: HTTP {status}: {_excerpt(response)}",
                retry_after=parse(response.headers, time.time()).reset_secs(),
            )
        if status in _SATURATED_STATUS:
            raise ProviderSaturated(
                f"model server is saturated: HTTP {status}: {_excerpt(response)}",
                retry_after=retry_after_secs(response.headers.get("retry-after")),
            )
        if status in _TRANSIENT_STATUS or status >= 500:
            raise TransientJobError(
                f"model server answered HTTP {status}: {_excerpt(response)}",
                retry_after=retry_after_secs(response.headers.get("retry-after")),
            )
        if status >= 400:
            raise PermanentJobError(f"model server answered HTTP {status}: {_excerpt(response)}")
        return self._parse(response)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        pool = min(range(POOLS), key=self._busy.__getitem__)
        self._busy[pool] += 1
        sent = self.pacer.sent()
        headers: httpx.Headers | dict[str, str] = {}
        try:
            response = await self._clients[pool].post("chat/completions", json=body)
            headers = response.headers
            return response
        finally:
            self._busy[pool] -= 1
            self.pacer.observe(sent, parse(headers, time.time()))  # the provider's limits

    def _parse(self, response: httpx.Response) -> ModelReply:
        try:
            data = response.json()
            message = data["choices"][0]["message"]
            content = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TransientJobError(
                f"model server sent an unexpected response: {_excerpt(response)}"
            ) from exc
        calls = message.get("tool_calls") or []
        if not isinstance(content, str) and not calls:
            raise TransientJobError("model server sent a response without text content")
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        total = usage.get("total_tokens")
        if not isinstance(total, int) and isinstance(prompt_tokens, int):
            total = prompt_tokens + (completion_tokens if isinstance(completion_tokens, int) else 0)
        self.pacer.used(total if isinstance(total, int) else None)
        return ModelReply(
            message,
            content if isinstance(content, str) else "",
            prompt_tokens if isinstance(prompt_tokens, int) else None,
            completion_tokens if isinstance(completion_tokens, int) else None,
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
