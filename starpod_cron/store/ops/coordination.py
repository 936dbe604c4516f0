"""What nodes sharing a store agree on: named leases, node heartbeats, dashboard log-ins."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from ...models import GONE_AFTER_HEARTBEATS, Lease, LoginSession, NodeInfo
from ...timeutil import from_ms
from .. import logins
from ..batches import (
    NODE_MEMORY_MS,
    STOPPED_NODE_MEMORY_MS,
    check_lease,
    lease_from_row,
    lease_since,
    may_take_lease,
    node_from_row,
    node_params,
)
from ..core import StoreCore
from ..driver import Tx


class CoordinationOps(StoreCore):
    async def database_now_ms(self) -> int:
        async def script(tx: Tx) -> int:
            return int(await tx.value("database_now", {}))

        return await self._read(script)

    async def acquire_lease(self, name: str, holder: str, lease_secs: float) -> Lease | None:
        check_lease(name, holder, lease_secs)

        async def script(tx: Tx) -> Lease | None:
            now = self.clock.now_ms()
            expires = now + round(lease_secs * 1000)
            lease = {"name": name, "holder": holder, "since": now, "expires": expires}
            row = await tx.one("lock_lease", {"name": name})
            if row is None:  # a racing first taker wins; the other sees "held" next time
                if await tx.execute("insert_lease", lease) != 1:
                    return None
                return Lease(name, holder, from_ms(now), from_ms(expires), None)
            _, current, held_since, expires_at, state = row
            if not may_take_lease(holder, current, expires_at, now):
                return None
            since = lease_since(holder, current, held_since, expires_at, now)
            await tx.execute("update_lease", {**lease, "since": since})
            return Lease(name, holder, from_ms(since), from_ms(expires), state)

        return await self._write(script)

    async def save_lease_state(self, name: str, holder: str, state: str) -> bool:
        check_lease(name, holder)

        async def script(tx: Tx) -> bool:
            params = {"state": state, "name": name, "holder": holder, "now": self.clock.now_ms()}
            return await tx.execute("save_lease_state", params) == 1

        return await self._write(script)

    async def release_lease(self, name: str, holder: str) -> None:
        check_lease(name, holder)

        async def script(tx: Tx) -> None:
            params = {"name": name, "holder": holder, "now": self.clock.now_ms()}
            await tx.execute("release_lease", params)

        await self._write(script)

    async def list_leases(self) -> list[Lease]:
        return [lease_from_row(r) for r in await self._rows("list_leases")]

    async def heartbeat(self, node: NodeInfo, *, stopped: bool = False) -> None:
        async def script(tx: Tx) -> None:
            now = self.clock.now_ms()
            await tx.execute("heartbeat", node_params(node, now, stopped))
            forget = {
                "before": now - NODE_MEMORY_MS,
                "stopped_before": now - STOPPED_NODE_MEMORY_MS,
            }
            await tx.execute("forget_nodes", forget)

        await self._write(script)

    async def schedulers_up(self) -> int:
        params = {"beats": GONE_AFTER_HEARTBEATS, "now": self.clock.now_ms()}
        return int(await self._value("schedulers_up", params))

    async def list_nodes(self) -> list[NodeInfo]:
        now = self.clock.now_ms()
        window = {"since": now - NODE_MEMORY_MS, "stopped_since": now - STOPPED_NODE_MEMORY_MS}
        return [node_from_row(r) for r in await self._rows("list_nodes", window)]

    # ---------------------------------------------------- dashboard log-in sessions
    async def create_login_session(
        self, user_id: str, token_fingerprint: str, ttl_secs: float
    ) -> str:
        ttl_ms = logins.check_new(user_id, token_fingerprint, ttl_secs)
        session_id, key = logins.new_session()

        async def script(tx: Tx) -> None:
            now = self.clock.now_ms()
            await tx.execute("delete_expired_login_sessions", {"now": now})
            params = {
                "key": key,
                "user_id": user_id,
                "fingerprint": token_fingerprint,
                "now": now,
                "expires": now + ttl_ms,
            }
            await tx.execute("insert_login_session", params)

        await self._write(script)
        return session_id

    async def get_login_session(self, session_id: str) -> LoginSession | None:
        key = logins.id_hash(session_id)
        if key is None:
            return None
        now = self.clock.now_ms()
        rows = await self._rows("get_login_session", {"key": key, "now": now})
        if not rows:
            return None
        session = logins.session_from_row(tuple(rows[0]))
        if int(rows[0][4]) < now - logins.TOUCH_MS:
            params = {"now": now, "key": key, "before": now - logins.TOUCH_MS}

            async def script(tx: Tx) -> None:
                await tx.execute("touch_login_session", params)

            await self._write(script)
            session = replace(session, last_used_at=from_ms(now))
        return session

    async def delete_login_session(self, session_id: str) -> bool:
        key = logins.id_hash(session_id)
        if key is None:
            return False

        async def script(tx: Tx) -> bool:
            return await tx.execute("delete_login_session", {"key": key}) > 0

        return await self._write(script)

    async def end_login_sessions(self, keep_fingerprints: Collection[str]) -> int:
        keep = sorted(str(f) for f in keep_fingerprints)

        async def script(tx: Tx) -> int:
            return await tx.execute("end_login_sessions", {"keep": keep})

        return await self._write(script)

    async def prune_login_sessions(self) -> int:
        async def script(tx: Tx) -> int:
            return await tx.execute("delete_expired_login_sessions", {"now": self.clock.now_ms()})

        return await self._write(script)
