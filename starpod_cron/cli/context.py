"""What every command is handed: the open store, the configuration and the display zone, and
the one way commands look jobs up by name or id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..access import LOCAL_ADMIN
from ..config import AgentConfig
from ..errors import JobNotFound
from ..models import CronJob
from ..store import CronStore
from ..timeutil import from_ms

if TYPE_CHECKING:
    from ..operations import JobOperations


@dataclass
class Context:
    store: CronStore
    config: AgentConfig
    display_tz: str | None
    as_json: bool = False
    """``--json``: the command's answer is the JSON document (a table may skip its views)."""

    def tz(self, job_tz: str) -> str:
        return self.display_tz or job_tz

    def column_zone(self, zones: Iterable[str]) -> str:
        """The one zone of a table's time column: ``--tz``, else the zone all its jobs share,
        else the store's default zone."""
        if self.display_tz:
            return self.display_tz
        shared = set(zones)
        return shared.pop() if len(shared) == 1 else self.store.settings.default_timezone

    def now(self) -> datetime:
        return from_ms(self.store.clock.now_ms())

    @property
    def ops(self) -> JobOperations:
        from ..operations import JobOperations  # (loaded by the commands that use them)
        from ..preview import PreviewSettings

        return JobOperations(
            self.store,
            preview=PreviewSettings.of(self.config),
            destinations=self.config.destinations,
        )


async def find_jobs(c: Context, names: list[str]) -> list[CronJob]:
    """Every named job (by name or id), before anything is changed; JobNotFound names all
    the missing ones."""
    found: list[CronJob] = []
    missing: list[str] = []
    for name in names:
        try:
            found.append(await c.ops.find(LOCAL_ADMIN, name))
        except LookupError:
            missing.append(name)
    if missing:
        raise JobNotFound("no job named " + ", ".join(repr(m) for m in missing))
    return found
