"""Run history, statistics, pruning, and the conversations of ``main`` sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ...errors import InvalidInput
from ...models import CronRun, RunStats, RunStatus, SessionMessage
from ...timeutil import from_ms, to_ms
from .. import planning
from ..batches import MAX_ID, bounded
from ..core import StoreCore
from ..driver import Tx
from ..records import RunRecord
from ..types import HourCount, RunFilter, RunPage

HOUR_MS = 3_600_000

_MESSAGE_COLUMNS = ("session_id", "role", "content", "run_id", "created_at")


class HistoryOps(StoreCore):
    async def list_runs(self, job_id: str, limit: int = 20) -> list[CronRun]:
        return await self._runs("list_runs", {"job_id": job_id, "limit": bounded(limit)})

    async def list_recent_runs(
        self,
        limit: int = 20,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
    ) -> list[CronRun]:
        wanted = None if status is None else RunStatus(status).value
        params = {"limit": bounded(limit), "job_id": job_id, "status": wanted}
        if job_id is not None:  # through runs_job, not a walk over every job's runs
            query = "list_runs" if wanted is None else "list_job_runs_with_status"
        elif wanted == RunStatus.RUNNING.value:
            query = "list_running_runs"  # through runs_leases
        else:
            query = "list_recent_runs"
        return await self._runs(query, params)

    async def page_runs(self, where: RunFilter, limit: int = 50) -> RunPage:
        params = {
            "owner": where.owner,
            "job_id": where.job_id,
            "status": None if where.status is None else RunStatus(where.status).value,
            "trigger": None if where.trigger is None else str(where.trigger),
        }
        # one job's runs through runs_job (job_id, seq); across jobs, the seq key backwards
        one_job = where.job_id is not None
        listed, counted = (
            ("page_job_runs", "count_job_runs") if one_job else ("page_runs", "count_runs")
        )
        before = MAX_ID if where.before is None else where.before
        page = {**params, "before": bounded(before, 0, MAX_ID)}
        size = bounded(limit, 1)
        page["limit"] = size + 1  # one more: is there a next page?

        async def script(tx: Tx) -> RunPage:
            rows = [tuple(r) for r in await tx.rows(listed, page)]
            total = int(await tx.value(counted, params))
            runs = [RunRecord.from_row(r[1:]).to_public() for r in rows[:size]]
            more = len(rows) > size
            return RunPage(runs, total, int(rows[size - 1][0]) if more else None)

        return await self._read(script)

    async def runs_per_hour(
        self, since: datetime, hours: int, owner: str | None
    ) -> list[HourCount]:
        start = to_ms(since)
        params = {"since": start, "owner": owner}
        found = {int(s): (int(n), int(f)) for s, n, f in await self._rows("runs_per_hour", params)}
        return [
            HourCount(from_ms(start + h * HOUR_MS), *found.get(h, (0, 0)))
            for h in range(max(0, hours))
        ]

    async def get_run(self, run_id: str) -> CronRun | None:
        runs = await self._runs("get_run", {"id": run_id})
        return runs[0] if runs else None

    async def run_stats(self) -> dict[str, RunStats]:
        return {
            job: RunStats(int(n), int(e), int(p), int(c), None if d is None else int(d))
            for job, n, e, p, c, d in await self._rows("run_stats")
        }

    async def prune_runs(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_runs", older_than, dry_run)

    async def prune_messages(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_messages", older_than, dry_run)

    async def prune_deliveries(self, older_than: datetime, *, dry_run: bool = False) -> int:
        return await self._prune("old_deliveries", older_than, dry_run)

    async def _prune(self, what: str, older_than: datetime, dry_run: bool) -> int:
        """``count_<what>`` or ``delete_<what>`` of the rows before ``older_than``."""
        params = {"cutoff": to_ms(older_than)}
        if dry_run:
            return int(await self._value(f"count_{what}", params))

        async def script(tx: Tx) -> int:
            return await tx.execute(f"delete_{what}", params)

        return await self._write(script)

    async def optimize(self) -> None:
        async def script(tx: Tx) -> None:
            await tx.execute("analyze")

        await self._write(script)

    # ------------------------------------------------------------- conversations
    async def main_session_id(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidInput("session key must be a non-empty string")

        async def script(tx: Tx) -> str:
            now = self.clock.now_ms()
            await tx.execute("insert_session", {"id": planning.new_id(now), "key": key, "now": now})
            return str(await tx.value("get_session_by_key", {"key": key}))

        return await self._write(script)

    async def session_messages(self, session_id: str, limit: int) -> list[SessionMessage]:
        params = {"session_id": session_id, "limit": bounded(limit)}
        rows = await self._rows("session_messages", params)
        return [SessionMessage(r[0], r[1], r[2], from_ms(r[3])) for r in rows]

    async def append_session_messages(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        run_id: str | None = None,
        keep: int | None = None,
    ) -> None:
        async def script(tx: Tx) -> None:
            now = self.clock.now_ms()
            rows = [(session_id, role, content, run_id, now) for role, content in messages]
            await tx.execute_many("insert_messages", rows, _MESSAGE_COLUMNS)
            await tx.execute("touch_session", {"now": now, "session_id": session_id})
            if keep is not None:
                params = {"session_id": session_id, "keep": bounded(keep, 1)}
                await tx.execute("trim_messages", params)

        await self._write(script)
