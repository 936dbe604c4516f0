"""The durable outbox: deliveries claimed, finished, renewed, listed and retried; refusing
destinations."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from ... import owner as owners
from ...models import Delivery, DeliveryStatus, DestinationRefusal
from ...timeutil import from_ms
from ..batches import (
    MAX_ID,
    bounded,
    check_destination,
    check_lease,
    outcome_params,
    refusal_delay_ms,
    refusal_from_row,
)
from ..core import StoreCore
from ..driver import Tx
from ..records import delivery_from_row
from ..types import DeliveryOutcome, Topic


class OutboxOps(StoreCore):
    async def claim_deliveries(
        self,
        owner: str,
        limit: int,
        lease_secs: float,
        prefixes: Sequence[str] | None = None,
    ) -> list[Delivery]:
        async def script(tx: Tx) -> list[Delivery]:
            now = self.clock.now_ms()
            senders = [row[0] for row in await tx.rows("sending_owners")]
            params = {
                "now": now,
                "limit": bounded(limit),
                "any": prefixes is None,
                "prefixes": list(prefixes or ()),
                "dead": [s for s in senders if owners.is_dead(s)],
                "owner": owner,
                "until": now + round(lease_secs * 1000),
            }
            rows = await tx.rows("claim_deliveries", params)
            return sorted(map(delivery_from_row, rows), key=lambda d: d.id)

        return await self._write(script)

    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        if not outcomes:
            return []

        async def script(tx: Tx) -> list[bool]:
            now = self.clock.now_ms()
            answers: list[bool] = []
            for o in outcomes:
                changed = await tx.execute("finish_delivery", outcome_params(o, now, owner))
                answers.append(changed == 1)
            if any(o.retry_at is not None for o in outcomes):
                tx.changed(Topic.DELIVERIES)
            return answers

        return await self._write(script)

    async def finish_delivery(
        self,
        delivery_id: int,
        owner: str,
        *,
        delivered: bool,
        error: str | None = None,
        retry_at: datetime | None = None,
        attempted: bool = True,
    ) -> bool:
        outcome = DeliveryOutcome(delivery_id, delivered, error, retry_at, attempted)
        (done,) = await self.finish_deliveries(owner, [outcome])
        return done

    async def renew_deliveries(self, owner: str, ids: Collection[int], lease_secs: float) -> int:
        if not ids:
            return 0

        async def script(tx: Tx) -> int:
            until = self.clock.now_ms() + round(lease_secs * 1000)
            params = {"until": until, "owner": owner, "ids": sorted(ids)}
            return await tx.execute("renew_deliveries", params)

        return await self._write(script)

    async def record_delivery_progress(self, delivery_id: int, owner: str, progress: int) -> bool:
        params = {"progress": progress, "id": delivery_id, "owner": owner}

        async def script(tx: Tx) -> bool:
            return await tx.execute("delivery_progress", params) == 1

        return await self._write(script)

    async def list_deliveries(
        self,
        since_id: int,
        destinations: Sequence[str] | None,
        limit: int = 1000,
        *,
        prefix: str | None = None,
    ) -> list[Delivery]:
        params = {
            "since": bounded(since_id, 0, MAX_ID),
            "everywhere": destinations is None,
            "destinations": list(destinations or ()),
            "prefix": prefix,
            "limit": bounded(limit),
        }

        async def script(tx: Tx) -> list[Delivery]:
            return [delivery_from_row(r) for r in await tx.rows("list_deliveries", params)]

        return await self._read(script)

    async def count_deliveries(self) -> dict[DeliveryStatus, int]:
        rows = await self._rows("count_deliveries")
        return {DeliveryStatus(status): int(n) for status, n in rows}

    async def deliveries_with_status(
        self, status: DeliveryStatus, limit: int = 100, job_ids: Sequence[str] | None = None
    ) -> list[Delivery]:
        most = bounded(limit)
        params = {"status": DeliveryStatus(status).value, "limit": most}
        if job_ids is None:
            rows = await self._rows("deliveries_with_status", params)
            return [delivery_from_row(r) for r in rows]

        async def script(tx: Tx) -> list[Delivery]:
            found = [
                delivery_from_row(r)
                for job_id in sorted(set(job_ids))
                for r in await tx.rows("deliveries_of_job", params | {"job_id": job_id})
            ]
            return sorted(found, key=lambda d: -d.id)[:most]

        return await self._read(script)

    async def get_delivery(self, delivery_id: int) -> Delivery | None:
        rows = await self._rows("get_delivery", {"id": bounded(delivery_id, 0, MAX_ID)})
        return delivery_from_row(rows[0]) if rows else None

    async def retry_delivery(self, delivery_id: int) -> bool:
        async def script(tx: Tx) -> bool:
            params = {"now": self.clock.now_ms(), "id": bounded(delivery_id, 0, MAX_ID)}
            retried = await tx.execute("retry_delivery", params) == 1
            if retried:
                tx.changed(Topic.DELIVERIES)
            return retried

        return await self._write(script)

    async def next_delivery_at(self, prefixes: Sequence[str] | None = None) -> datetime | None:
        params = {"any": prefixes is None, "prefixes": list(prefixes or ())}
        value = await self._value("next_delivery_at", params)
        return None if value is None else from_ms(int(value))

    async def last_delivery_id(self) -> int:
        return int(await self._value("last_delivery_id"))

    # ------------------------------------------------------- refusing destinations
    async def refuse_destination(
        self, name: str, error: str, backoff_secs: Sequence[float]
    ) -> DestinationRefusal:
        check_destination(name, backoff_secs)

        async def script(tx: Tx) -> DestinationRefusal:
            now = self.clock.now_ms()
            row = await tx.one("refuse_destination", {"name": name, "now": now, "error": error})
            assert row is not None  # an upsert returns its row
            since, failures = row
            retry_at = now + refusal_delay_ms(backoff_secs, failures)
            await tx.execute("destination_retry_at", {"retry_at": retry_at, "name": name})
            return DestinationRefusal(name, from_ms(since), from_ms(retry_at), failures, error)

        return await self._write(script)

    async def take_destination_probe(self, name: str, lease_secs: float) -> bool:
        check_destination(name)
        check_lease(name, "probe", lease_secs)

        async def script(tx: Tx) -> bool:
            now = self.clock.now_ms()
            params = {"until": now + round(lease_secs * 1000), "name": name, "now": now}
            return await tx.execute("take_destination_probe", params) == 1

        return await self._write(script)

    async def clear_destination(self, name: str) -> bool:
        check_destination(name)

        async def script(tx: Tx) -> bool:
            cleared = await tx.execute("clear_destination", {"name": name}) == 1
            if cleared:  # its waiting deliveries are due
                tx.changed(Topic.DELIVERIES)
            return cleared

        return await self._write(script)

    async def refusing_destinations(self) -> list[DestinationRefusal]:
        return [refusal_from_row(r) for r in await self._rows("refusing_destinations")]
