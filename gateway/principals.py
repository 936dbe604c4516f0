"""Who is asking: a WebSocket token's owner or a Telegram user, and what they may see."""

from __future__ import annotations

from dataclasses import dataclass

from starpod_cron import CronJob

WS_AGENT = "ws:agent"


def ws_user(user_id: str) -> str:
    return f"ws:user:{user_id}"


def telegram_destination(chat_id: int, thread_id: int | None = None) -> str:
    return f"tg:{chat_id}" if thread_id is None else f"tg:{chat_id}:{thread_id}"


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
