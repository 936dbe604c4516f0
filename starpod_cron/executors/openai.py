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
from collections.abc import Iterable
from typing import Any

import httpx

from ..access import Principal
from ..chat import ModelReply, ToolUse
from ..errors import (
    ModelNotFound,
    PermanentJobError,
    ProviderHeld,
    ProviderSaturated,
    ProviderServerError,
    TransientJobError,
)
from ..models import JobContext, JobResult, ModelOptions, SessionMode
from ..operations import JobOperations
from ..pacing import Pacer
from ..ratelimits import parse, quota_refused, retry_after_secs
from ..runprompt import ModelDefaults, allowed_tools, run_messages
from ..settings import ESCALATE_TOKEN, SILENT_TOKEN
from ..store.contract import SessionStore
from .base import session_for
from .modelcall import ask

log = logging.getLogger("starpod_cron.executors")

_TRANSIENT_STATUS = {408, 425}
_SATURATED_STATUS = {429, 503}
POOLS = 64  # backpressure: retried in the same attempt, not failures


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_missing(status: int, response: httpx.Response) -> bool:
    """The provider says the model does not exist: 404, or a 400 saying so."""
    if status == 404:
        return True
    text = response.text.lower() if status == 400 else ""
    return "model_not_found" in text or "does not exist" in text


def _total(counts: Iterable[int | None]) -> int | None:
    """The sum of token counts (None when none was reported)."""
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


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
        escalate_token: str = ESCALATE_TOKEN,
        all_tools_by_default: bool = False,
    ) -> None:
        """``silent_token``: the answer a recurring job's run may give when it has nothing to
        report (the store's ``[cron] silent_token``, which records such a run as silent);
        ``escalate_token``: the start of an answer that makes a job with ``escalate_to`` ask
        that model. ``all_tools_by_default`` (``allow_scheduling_from_runs``): jobs without
        their own ``tools`` may call every tool."""
        self._store = store
        self._silent_token = silent_token
        self._escalate_token = escalate_token
        self._all_tools = all_tools_by_default
        self._model = model
        self.defaults = ModelDefaults(model, system_prompt, temperature, max_tokens)
        self._timeout = request_timeout_secs
        self._max_history = max_history_messages
        self._options = self.defaults.request_options(ModelOptions())
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
        """The operations a scheduled run's tool calls go through (as the job's owner, never
        an admin), for the tools its job allows. None: runs get no tools."""

    def tool_use(self, ctx: JobContext) -> ToolUse | None:
        """The tools a run may call (its job's ``tools``; every tool for a job without them
        with ``allow_scheduling_from_runs``), as its owner: a user's run is that user, under
        the per-user limits, and cannot create jobs for anyone else; an agent-level job's run
        is the agent, not an admin. None: no tools."""
        allowed = allowed_tools(ctx.options, self._all_tools)
        if self.run_tools is None or allowed == frozenset():
            return None
        return ToolUse(self.run_tools, Principal(ctx.user_id), allowed=allowed)

    async def __call__(self, ctx: JobContext) -> JobResult:
        session_id = await session_for(ctx, self._store)
        main = ctx.session_mode is SessionMode.MAIN
        history = await self._store.session_messages(session_id, self._max_history) if main else []
        tools = self.tool_use(ctx)
        messages = run_messages(
            ctx,
            self.defaults,
            silent_token=self._silent_token,
            escalate_token=self._escalate_token,
            tools=tools is not None,
            history=[(m.role, m.content) for m in history],
        )
        answer = await ask(
            self, ctx, messages, self.defaults, tools=tools, escalate_token=self._escalate_token
        )
        if main:
            await self._store.append_session_messages(
                session_id,
                [("user", ctx.prompt), ("assistant", answer.text)],
                run_id=ctx.run_id,
                keep=self._max_history,
            )
        return JobResult(
            session_id,
            answer.text,
            _total(u.prompt_tokens for u in answer.usages),
            _total(u.completion_tokens for u in answer.usages),
            answer.model,
            answer.usages,
        )

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        model: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ModelReply:
        """One chat completion (with ``tools`` offered, if given) of ``model`` (default
        ``[executor] model``) with ``options`` (temperature, max_tokens; default
        ``[executor]``'s). Errors are classified: TransientJobError (retry; a server error is
        ProviderServerError) or PermanentJobError (ModelNotFound: the model does not exist)."""
        body: dict[str, Any] = {
            "model": model or self._model,
            "messages": messages,
            **(self._options if options is None else options),
        }
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
        if status >= 500:
            raise ProviderServerError(
                f"model server answered HTTP {status}: {_excerpt(response)}",
                retry_after=retry_after_secs(response.headers.get("retry-after")),
            )
        if status in _TRANSIENT_STATUS:
            raise TransientJobError(
                f"model server answered HTTP {status}: {_excerpt(response)}",
                retry_after=retry_after_secs(response.headers.get("retry-after")),
            )
        if model_missing(status, response):
            raise ModelNotFound(
                f"model {body['model']!r} not found: HTTP {status}: {_excerpt(response)}"
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
        details = usage.get("prompt_tokens_details")  # OpenAI: what the prompt cache served
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return ModelReply(
            message,
            content if isinstance(content, str) else "",
            prompt_tokens if isinstance(prompt_tokens, int) else None,
            completion_tokens if isinstance(completion_tokens, int) else None,
            cached if isinstance(cached, int) and not isinstance(cached, bool) else None,
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
