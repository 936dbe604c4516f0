"""Which backend a store URL means, and opening it. Backends are imported by name, on use:
this module imports none of them, and none of them imports it (no cycle)."""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..settings import StoreSettings

if TYPE_CHECKING:
    from .base import CronStore

_BACKENDS = {
    "sqlite": "starpod_cron.store.sqlite:SqliteStore",
    "postgresql": "starpod_cron.store.postgres:PostgresStore",
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SUPPORTED = "a file path, sqlite:///path, or postgresql://user@host/db"


def parse_url(url: str) -> tuple[str, str]:
    """``(backend, target)``: ``("sqlite", path)`` or ``("postgresql", dsn)``.

    ``sqlite:///jobs.db`` is the relative path ``jobs.db`` and ``sqlite:////var/jobs.db`` the
    absolute one (SQLAlchemy's convention); anything without a scheme is a file path.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"the store URL is empty: give {SUPPORTED}")
    if url.startswith("sqlite:///"):
        return "sqlite", url.removeprefix("sqlite:///")
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        return "sqlite", url.removeprefix("sqlite:")
    match = _SCHEME.match(url)
    if match is None:
        return "sqlite", url
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", "postgresql://" + url[match.end() :]
    raise ConfigError(f"unsupported store URL scheme {scheme!r}: give {SUPPORTED}")


async def open_store(
    url: str, settings: StoreSettings, clock: Clock | None, *, create: bool = True
) -> CronStore:
    backend, target = parse_url(url)
    module_name, _, class_name = _BACKENDS[backend].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {backend} store needs a package that is not installed ({exc.name}): "
            "pip install 'starpod-cron[postgres]'"
        ) from exc
    store_class: type[CronStore] = getattr(module, class_name)
    connect = getattr(store_class, "connect")  # noqa: B009 - each backend's own classmethod
    store: CronStore = await connect(target, settings, clock or SystemClock(), create=create)
    return store
