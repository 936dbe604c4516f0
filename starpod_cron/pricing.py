"""What model calls cost: the ``[pricing]`` section of ``agent.toml`` and the sums made from it.

::

    [pricing]
    default_output_tokens = 500          # for estimates (a preview), default 500
    "gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
    "gpt-4o" = { input_per_mtok = 2.50, output_per_mtok = 10.00, cached_input_per_mtok = 1.25 }

Prices are US dollars per million tokens. Costs are kept as whole **picodollars**
(10⁻¹² USD, :data:`PICO`) so that sums over runs, jobs, owners and days are exact integers
(a float total of many runs drifts: 0.1 + 0.2 != 0.3); :func:`usd` turns one into dollars for
display. A model with no price has an unknown cost (``None``), never 0: a run that asked an
unpriced model, or whose tokens were not reported, costs "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .bounds import check_fields, whole, within
from .errors import ConfigError

if TYPE_CHECKING:
    from .execution import ModelUsage

PICO: Final = 10**12
"""Picodollars per dollar."""
MAX_PRICE_PER_MTOK: Final = 1_000_000.0
DEFAULT_OUTPUT_TOKENS: Final = 500


def _per_token(per_mtok: float) -> int:
    """Picodollars per token for a price in dollars per million tokens (exact to 10⁻⁶ $/Mtok)."""
    return round(per_mtok * 1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's price, dollars per million tokens; ``cached_input_per_mtok`` for prompt
    tokens served from the provider's cache (absent: they cost ``input_per_mtok``)."""

    input_per_mtok: float = field(metadata=within(0, MAX_PRICE_PER_MTOK))
    output_per_mtok: float = field(metadata=within(0, MAX_PRICE_PER_MTOK))
    cached_input_per_mtok: float | None = field(
        default=None, metadata=within(0, MAX_PRICE_PER_MTOK)
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def cost(self, usage: ModelUsage) -> int | None:
        """Picodollars for ``usage`` (None when its token counts were not reported)."""
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            return None
        cached = min(usage.cached_tokens or 0, usage.prompt_tokens)
        cached_price = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )
        return (
            (usage.prompt_tokens - cached) * _per_token(self.input_per_mtok)
            + cached * _per_token(cached_price)
            + usage.completion_tokens * _per_token(self.output_per_mtok)
        )


@dataclass(frozen=True, slots=True)
class PricingConfig:
    """``[pricing]``: prices per model (keyed by the model's name as jobs and the provider
    spell it) and the output tokens an estimate assumes for a job with no history."""

    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    # output tokens a cost estimate assumes for a job with no history
    default_output_tokens: int = field(default=DEFAULT_OUTPUT_TOKENS, metadata=whole(0, 10_000_000))

    def __post_init__(self) -> None:
        check_fields(self)

    def price(self, model: str | None) -> ModelPrice | None:
        return None if model is None else self.models.get(model)

    def cost(self, usages: Iterable[ModelUsage]) -> int | None:
        """Picodollars for all of ``usages`` (a run's calls to each model it asked), or None
        when any of them is unknown (an unpriced model, unreported tokens). No usage at all
        (a command, the echo executor) costs nothing: 0."""
        total = 0
        for usage in usages:
            price = self.price(usage.model)
            part = None if price is None else price.cost(usage)
            if part is None:
                return None
            total += part
        return total

    def estimate(self, model: str | None, input_tokens: int, output_tokens: int) -> int | None:
        """Picodollars for one call of ``model`` with these token counts (None: unpriced)."""
        price = self.price(model)
        if price is None:
            return None
        from .execution import ModelUsage  # (the run's value types load with the runs)

        return price.cost(ModelUsage(model or "", input_tokens, output_tokens))


def estimate_input_tokens(text: str) -> int:
    """A rough token count for text never sent: UTF-8 bytes / 4, rounded up."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def usd(picodollars: int | None) -> float | None:
    """Picodollars as dollars (None stays None: unknown)."""
    return None if picodollars is None else picodollars / PICO


def picodollars(dollars: float) -> int:
    """Dollars (a budget, a price) as whole picodollars."""
    return round(dollars * PICO)


def format_usd(picodollars: int | None) -> str:
    """``$0.0020`` (four decimals, more for amounts under a hundredth of a cent), or
    ``cost unknown``."""
    if picodollars is None:
        return "cost unknown"
    dollars = picodollars / PICO
    if dollars != 0 and abs(dollars) < 0.0001:
        return f"${dollars:.8f}".rstrip("0")
    return f"${dollars:,.4f}"


def parse_pricing(
    section: Mapping[str, Any],
    where: str,
    section_of: Callable[[type[ModelPrice], dict[str, Any], str], ModelPrice],
) -> PricingConfig:
    """``[pricing]`` as read from TOML: ``default_output_tokens`` and one table per model,
    each read by ``section_of`` (config.py's reader of every section, handed in: config
    imports this module)."""
    values = dict(section)
    default_output = values.pop("default_output_tokens", DEFAULT_OUTPUT_TOKENS)
    if isinstance(default_output, bool) or not isinstance(default_output, int):
        raise ConfigError(
            f"{where} default_output_tokens: expected an integer, got {default_output!r}"
        )
    models: dict[str, ModelPrice] = {}
    for name, table in values.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{where}: {name!r} must be a table like "
                f'"{name}" = {{ input_per_mtok = 0.15, output_per_mtok = 0.60 }} '
                "(the only other key is default_output_tokens)"
            )
        models[name] = section_of(ModelPrice, table, f"{where} {name!r}")
    try:
        return PricingConfig(models=models, default_output_tokens=default_output)
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None
