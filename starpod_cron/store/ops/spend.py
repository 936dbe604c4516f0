"""Spend in the store: the pieces of the claim and completion scripts that read and write it
(what they decide is in :mod:`..budgets`), and the usage views (:class:`SpendOps`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Final

from ...budget import ALL_TIME, UsageRow
from ...errors import InvalidInput
from ...settings import StoreSettings
from ...timeutil import from_ms, to_ms
from ..batches import bounded, delivery_rows
from ..budgets import SPEND_COLUMNS, BudgetCheck, SpendBook, budgeted, spend_params
from ..core import StoreCore
from ..driver import Tx
from ..records import JobRecord
from ..types import DeliveryPlanner

SCOPES: Final = ("job", "owner", "global")
PERIODS: Final = ("day", "month", ALL_TIME)


async def owner_zones(tx: Tx, owners: Collection[str | None]) -> dict[str, str]:
    """The ``/tz`` preference of each of ``owners`` that has one."""
    wanted = sorted({o for o in owners if o is not None})
    if not wanted:
        return {}
    return {str(u): str(tz) for u, tz in await tx.rows("owner_timezones", {"owners": wanted})}


async def budget_check(
    tx: Tx, jobs: Sequence[JobRecord], settings: StoreSettings, now: int
) -> BudgetCheck | None:
    """The budgets of the jobs a claim may start, with the spend committed so far (None when
    none of them has a budget: no spend is read)."""
    if not jobs or not budgeted(jobs, settings):
        return None
    zones = await owner_zones(tx, [j.user_id for j in jobs])
    rows = await tx.rows("spend_for_budgets", spend_params(jobs, settings, zones, now))
    spent = {
        (str(scope), str(key), str(period), int(start)): (int(tokens or 0), int(cost or 0))
        for scope, key, period, start, tokens, cost in rows
    }
    return BudgetCheck(settings, zones, spent)


async def tell_budgets(
    tx: Tx, check: BudgetCheck | None, now: int, planner: DeliveryPlanner | None
) -> list[tuple[object, ...]]:
    """Give the first budget skip of each budget's period its notice; its deliveries (the
    row in ``budget_notices`` says once, whichever node skips first)."""
    rows: list[tuple[object, ...]] = []
    if check is None or not check.told:
        return rows
    for told in sorted(check.told, key=lambda t: (t.limit.budget, t.limit.key, t.run.id)):
        params = {
            "budget": told.limit.budget,
            "key": told.limit.key,
            "start_ms": told.limit.start_ms,
            "now": now,
        }
        if await tx.execute("tell_budget", params) == 0:
            continue
        told.run.notice = told.notice
        if planner is not None:
            job, run = told.job.to_public(), told.run.to_public()
            rows.extend(delivery_rows(planner, job, run, now))
    return rows


async def add_spend(tx: Tx, book: SpendBook) -> None:
    rows = book.rows()
    if rows:
        await tx.execute_many("add_spend", rows, SPEND_COLUMNS)


class SpendOps(StoreCore):
    async def usage(
        self,
        *,
        scope: str | None = None,
        key: str | None = None,
        period: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        """Spend rows (see :class:`~starpod_cron.budget.UsageRow`), filtered by scope (``job``,
        ``owner``, ``global``), key (a job id, an owner id) and period (``day``, ``month``,
        ``all``), periods starting at or after ``since``."""
        if scope is not None and scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if period is not None and period not in PERIODS:
            raise InvalidInput(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
        params = {
            "scope": scope,
            "key": key,
            "period": period,
            "since": 0 if since is None else to_ms(since),
            "limit": bounded(limit),
        }
        return [
            UsageRow(
                str(sc),
                str(k),
                str(p),
                None if p == ALL_TIME else from_ms(int(start)),
                str(model) or None,
                int(runs),
                int(pt),
                int(ct),
                int(cost),
                int(unpriced),
            )
            for sc, k, p, start, model, runs, pt, ct, cost, unpriced in await self._rows(
                "usage_rows", params
            )
        ]
