"""One cgroup v2 per command run, so that everything the run started can be killed at its end,
including processes that left its process group and session (``setsid``, daemons).

Run cgroups live under ``<hierarchy>/starpod-cron/``: the cgroup v2 hierarchy is
``/sys/fs/cgroup`` on a unified host, or ``/sys/fs/cgroup/unified`` on a hybrid one (it has
``cgroup.controllers`` where a v1 tmpfs does not). Making them needs write access there
(root, or a delegated subtree); without it :meth:`RunCgroups.open` answers ``None`` and the
command executor falls back to killing the run's process group.

Placing a process needs no controllers (and none are enabled, so cgroup v2's "no internal
processes" rule does not bite). At the run's end :meth:`RunCgroup.kill` writes ``1`` to
``cgroup.kill`` (Linux 5.14+; before that, SIGKILL to each pid in ``cgroup.procs`` until none is
left), waits without blocking the event loop until the cgroup is empty, and removes it. File
operations on cgroupfs are in-kernel and immediate, so they are done inline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import uuid
from pathlib import Path

log = logging.getLogger("starpod_cron.executors")

HIERARCHIES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
PARENT = "starpod-cron"
EMPTY_TIMEOUT_SECS = 5.0


def find_hierarchy(candidates: tuple[Path, ...] = HIERARCHIES) -> Path | None:
    """The first of ``candidates`` that is a cgroup v2 hierarchy."""
    for root in candidates:
        if (root / "cgroup.controllers").is_file():
            return root
    return None


class RunCgroups:
    """Where this process makes its run cgroups (``<hierarchy>/starpod-cron``)."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent

    @classmethod
    def open(cls, candidates: tuple[Path, ...] = HIERARCHIES) -> RunCgroups | None:
        """The parent cgroup, made if missing; None without a writable cgroup v2 (why is
        logged at debug: the executor's notes tell the user what that means)."""
        root = find_hierarchy(candidates)
        if root is None:
            log.debug("no cgroup v2 hierarchy in %s", ", ".join(map(str, candidates)))
            return None
        parent = root / PARENT
        try:
            parent.mkdir(exist_ok=True)
        except OSError as exc:
            log.debug("cannot make the cgroup %s: %s", parent, exc)
            return None
        if not os.access(parent / "cgroup.procs", os.W_OK):
            log.debug("cannot place processes in %s: not writable", parent)
            return None
        return cls(parent)

    def create(self, run_id: str) -> RunCgroup:
        """A new, empty cgroup for one run (OSError if the kernel refuses)."""
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:64]
        path = self.parent / f"run-{label}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        return RunCgroup(path)


class RunCgroup:
    """One run's cgroup: processes go in with :meth:`add`; :meth:`kill` ends them all."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, pid: int) -> None:
        """Move ``pid`` into this cgroup (its later children are born in it)."""
        (self.path / "cgroup.procs").write_text(f"{pid}\n")

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        return [int(line) for line in text.split()]

    def populated(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False
        return "populated 1" in events

    async def kill(self) -> None:
        """SIGKILL every process in the cgroup, wait (up to EMPTY_TIMEOUT_SECS) until it is
        empty, remove it. Logs (does not raise) what it could not do: the run's outcome is
        already decided."""
        try:
            (self.path / "cgroup.kill").write_text("1\n")
            has_kill = True
        except FileNotFoundError:  # before Linux 5.14: one pid at a time
            has_kill = False
        except OSError as exc:
            log.warning("cannot kill the cgroup %s: %s", self.path, exc)
            has_kill = False
        delay = 0.001
        try:
            async with asyncio.timeout(EMPTY_TIMEOUT_SECS):
                while self.populated():
                    if not has_kill:
                        for pid in self.pids():
                            _kill(pid)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)
        except asyncio.CancelledError:  # stopped again while waiting: the kill is sent
            self.remove()
            raise
        except TimeoutError:
            log.warning(
                "processes %s in the cgroup %s outlived SIGKILL for %g s; leaving it",
                self.pids(),
                self.path,
                EMPTY_TIMEOUT_SECS,
            )
            return
        self.remove()

    def remove(self) -> None:
        """Remove the (empty) cgroup."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot remove the cgroup %s: %s", self.path, exc)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
