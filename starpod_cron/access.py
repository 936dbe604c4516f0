"""Who is asking (a gateway token's owner, a Telegram user, the local operator) and what they
may see and touch: a user only their own jobs and events; an admin everything."""

from __future__ import annotations

from dataclasses import dataclass

from .models import CronJob
from .routing import WS_AGENT, ws_user


@dataclass(frozen=True, slots=True)
class Principal:
    """``user_id`` None with ``admin`` is the local operator (no tokens configured)."""

    user_id: str | None
    admin: bool = False

    def may_touch(self, job: CronJob) -> bool:
        return self.admin or (self.user_id is not None and job.user_id == self.user_id)

    def audiences(self, share_agent_events: bool) -> set[str] | None:
        """WebSocket destinations this principal sees; None means all of them."""
        if self.admin:
            return None
        seen = {ws_user(self.user_id)} if self.user_id else set()
        if share_agent_events:
            seen.add(WS_AGENT)
        return seen


LOCAL_ADMIN = Principal(None, admin=True)
