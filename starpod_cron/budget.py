"""Budgets: what may be spent, by whom, per which period, and how a spent budget reads.

The rule is "a run starts only while spent < budget": the store checks it when it claims a
run (against the spend committed so far, :mod:`starpod_cron.store.budgets`), so the overshoot
is at most the runs already in flight. Budgets are per job (the fields of
:mod:`starpod_cron.spendfields`, periods from midnight / the 1st in the job's zone), per owner
(``[gateway] user_budget_usd_per_month``, or ``budget_usd_per_month`` of the owner's entry in
``[gateway.tokens]``; months in the owner's ``/tz`` zone, else ``[cron] timezone``) and global
(``[cron] budget_usd_per_day``, days in ``[cron] timezone``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from .bounds import check_fields, within
from .errors import ConfigError
from .pricing import PICO, PricingConfig
from .timeutil import from_ms, resolve_local, to_ms, zone

Period = Literal["day", "month"]
Scope = Literal["job", "owner", "global"]
ALL_TIME: Final = "all"
MAX_BUDGET_USD: Final = 1_000_000.0
MAX_BUDGET_TOKENS: Final = 10**15


@dataclass(frozen=True, slots=True)
class SpendSettings:
    """What the store needs to price runs and enforce the budgets that are not job fields:
    the ``[pricing]`` section and the owners' monthly budgets (the gateway fills these from
    ``[gateway]`` and its tokens; a library user passes them to ``StoreSettings``)."""

    pricing: PricingConfig = field(default_factory=PricingConfig)
    user_budget_usd_per_month: float | None = field(
        default=None, metadata=within(0, MAX_BUDGET_USD)
    )
    """Every owner's monthly budget (``[gateway] user_budget_usd_per_month``)."""
    owner_budgets_usd_per_month: Mapping[str, float] = field(default_factory=dict)
    """An owner's own monthly budget (``budget_usd_per_month`` of a ``[gateway.tokens]``
    entry), in place of ``user_budget_usd_per_month``."""

    def __post_init__(self) -> None:
        check_fields(self)
        for owner, budget in self.owner_budgets_usd_per_month.items():
            if isinstance(budget, bool) or not 0 <= budget <= MAX_BUDGET_USD:
                raise ConfigError(
                    f"budget_usd_per_month of {owner!r}: must be 0 to {MAX_BUDGET_USD:g} "
                    f"US dollars, got {budget!r}"
                )

    def owner_budget(self, owner: str | None) -> float | None:
        """``owner``'s monthly budget in dollars (None: none; agent-level jobs have none)."""
        if owner is None:
            return None
        return self.owner_budgets_usd_per_month.get(owner, self.user_budget_usd_per_month)

    @property
    def owners_limited(self) -> bool:
        return self.user_budget_usd_per_month is not None or bool(self.owner_budgets_usd_per_month)


def period_start(ms: int, timezone: str, period: Period) -> int:
    """Epoch ms of the start of the day (midnight) or month (the 1st, midnight) holding the
    instant ``ms`` in ``timezone`` (a midnight that does not exist: the first instant after)."""
    tz = zone(timezone)
    local = from_ms(ms).astimezone(tz)
    day = 1 if period == "month" else local.day
    return to_ms(resolve_local(datetime(local.year, local.month, day), tz))


def short_usd(picodollars: int) -> str:
    """``$0.006``, ``$1.50``, ``$12.00``: dollars with as many decimals as they need (two at
    least, six at most)."""
    text = f"{picodollars / PICO:,.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def amount(value: int, tokens: bool) -> str:
    return f"{value:,} tokens" if tokens else short_usd(value)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Spend of one scope (``job`` id, ``owner`` id, ``global``) in one period (``day``,
    ``month`` starting at ``start``, or ``all`` time: ``start`` None) with one model (None: runs
    that asked none, e.g. commands). ``unpriced_runs`` used a model with no price: their
    tokens count, their cost is unknown (not in ``cost_usd``)."""

    scope: str
    key: str
    period: str
    start: datetime | None
    model: str | None
    runs: int
    prompt_tokens: int
    completion_tokens: int
    cost_pusd: int
    unpriced_runs: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.cost_pusd / PICO
