"""Optional OpenTelemetry traces: one span per run, from its claim to its recorded completion
(``starpod_cron.run``: the job, occurrence and attempt as attributes), a child span per model
call following the GenAI semantic conventions (``chat MODEL``: ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``...),
and one span per delivery the outbox sends (``starpod_cron.delivery``).

Nothing is traced, and ``opentelemetry`` is not even imported, until an SDK's tracer provider
is configured (``opentelemetry-instrument starpod-cron serve``, or
``trace.set_tracer_provider`` before the scheduler starts): the first run looks once and
every hook is then a dictionary lookup at most. :func:`use` names a provider explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .store.types import Claim

T = TypeVar("T")
_UNSET: Any = object()
_tracer: Any = _UNSET
"""The tracer, None when tracing is off, _UNSET before the first look."""
_runs: dict[str, Span] = {}
"""The span of each run in flight in this process, by run id."""


def use(provider: TracerProvider | None) -> None:
    """Trace with ``provider`` from now on (None: look for the global one again)."""
    global _tracer
    _tracer = _UNSET if provider is None else provider.get_tracer("starpod_cron", __version__)
    _runs.clear()


def _look() -> Tracer | None:
    global _tracer
    if _tracer is _UNSET:
        _tracer = None
        if "opentelemetry.trace" in sys.modules or "OTEL_PYTHON_TRACER_PROVIDER" in os.environ:
            from opentelemetry import trace

            provider = trace.get_tracer_provider()
            if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
                _tracer = provider.get_tracer("starpod_cron", __version__)
    return _tracer  # type: ignore[no-any-return]


def run_claimed(claim: Claim) -> None:
    """A run was claimed (its span starts)."""
    tracer = _tracer if _tracer is not _UNSET else _look()
    if tracer is None:
        return
    _runs[claim.run_id] = tracer.start_span(
        "starpod_cron.run",
        attributes={
            "starpod_cron.job.name": claim.job_name,
            "starpod_cron.job.id": claim.job_id,
            "starpod_cron.run.id": claim.run_id,
            "starpod_cron.run.occurrence": claim.scheduled_for.isoformat(),
            "starpod_cron.run.attempt": claim.attempt,
        },
    )


def run_recorded(run_id: str, status: str, recorded: object) -> None:
    """The run's outcome ``status`` was recorded (``recorded`` True), or could not be."""
    span = _runs.get(run_id)
    if span is None:
        return
    from opentelemetry.trace import StatusCode

    span.set_attribute("starpod_cron.run.status", status)
    if recorded is not True:
        span.set_status(StatusCode.ERROR, "the outcome could not be recorded")
    elif status in ("failed", "timeout", "interrupted"):
        span.set_status(StatusCode.ERROR, status)


def run_ended(run_id: str) -> None:
    """The run left this process (recorded, lost, or skipped): its span ends."""
    span = _runs.pop(run_id, None)
    if span is not None:
        span.end()


class ModelCall:
    """What a model call's span learns from the answer (no-op when not tracing)."""

    def __init__(self, span: Span | None = None) -> None:
        self.span = span

    def answered(self, input_tokens: int | None, output_tokens: int | None, model: str) -> None:
        if self.span is None:
            return
        if input_tokens is not None:
            self.span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        if output_tokens is not None:
            self.span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        self.span.set_attribute("gen_ai.response.model", model)


_NO_CALL = ModelCall()
_REQUEST_KEYS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
}


@contextmanager
def model_call(
    run_id: str, model: str, options: Mapping[str, Any], provider: str = "openai"
) -> Iterator[ModelCall]:
    """A child span of the run's for one model asked (``chat MODEL``)."""
    parent = _runs.get(run_id)
    if parent is None:
        yield _NO_CALL
        return
    from opentelemetry import trace

    tracer = _look()
    assert tracer is not None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
    }
    attributes.update({k: options[o] for o, k in _REQUEST_KEYS.items() if o in options})
    with tracer.start_as_current_span(
        f"chat {model}",
        context=trace.set_span_in_context(parent),
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
    ) as span:
        try:
            yield ModelCall(span)
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            raise


async def delivery(sent: Awaitable[T], delivery_id: int, run_id: str, destination: str) -> T:
    """``await sent`` (the outbox sending one delivery) in a ``starpod_cron.delivery`` span;
    the attributes name the channel (``tg``, ``dest:NAME``), never the chat or address."""
    tracer = _tracer if _tracer is not _UNSET else _look()
    if tracer is None:
        return await sent
    kind, _, rest = destination.partition(":")
    channel = f"{kind}:{rest.split(':')[0]}" if kind == "dest" else kind
    attributes: dict[str, Any] = {
        "starpod_cron.delivery.id": delivery_id,
        "starpod_cron.run.id": run_id,
        "starpod_cron.delivery.channel": channel,
    }
    with tracer.start_as_current_span("starpod_cron.delivery", attributes=attributes) as span:
        outcome = await sent
        delivered = getattr(outcome, "delivered", None)
        if delivered is not None:
            span.set_attribute("starpod_cron.delivery.delivered", bool(delivered))
        return outcome
