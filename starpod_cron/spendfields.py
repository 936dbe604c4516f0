"""The fields of a job's budgets, declared like every other field (appended to
:data:`starpod_cron.fields.JOB_FIELDS`): a run starts only while the job's spend for the
period is under each budget it sets (see :mod:`starpod_cron.store.budgets`)."""

from __future__ import annotations

from .bounds import Within
from .budget import MAX_BUDGET_TOKENS, MAX_BUDGET_USD
from .fieldspec import JobField


def _budget(name: str, type_: str, help_: str, rule: Within, flag: str, metavar: str) -> JobField:
    return JobField(
        name,
        type_,
        help_,
        who="user",
        default=None,
        default_note="no budget",
        rule=rule,
        flag=flag,
        metavar=metavar,
    )


SPEND_FIELDS: tuple[JobField, ...] = (
    _budget(
        "budget_usd_per_day",
        "float | None",
        "US dollars the job may spend per day (from midnight in its zone): no run starts once "
        "its runs of the day cost this much.",
        Within(0, MAX_BUDGET_USD),
        "--budget-usd-per-day",
        "USD",
    ),
    _budget(
        "budget_usd_per_month",
        "float | None",
        "US dollars the job may spend per month (from the 1st in its zone).",
        Within(0, MAX_BUDGET_USD),
        "--budget-usd-per-month",
        "USD",
    ),
    _budget(
        "budget_tokens_per_day",
        "int | None",
        "Tokens (prompt + completion) the job may use per day (from midnight in its zone).",
        Within(0, MAX_BUDGET_TOKENS, integer=True),
        "--budget-tokens-per-day",
        "N",
    ),
)
