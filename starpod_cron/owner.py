"""Who holds a lease: ``host/boot/pidns/mark:pid:random``, and whether that holder is
provably dead.

A holder is provably dead only when it ran on this machine and no longer runs. "This
machine" is proven, not guessed from names: each process that hands out holder ids keeps an
exclusive ``flock`` on a marker file of its own (``mark``) in a machine-local directory
(``/dev/shm``, else the temporary directory) for as long as it lives. Another process finds
the holder dead when the host name and boot id match, the marker file is here, and its lock
can be taken: the kernel releases a lock only when its process is gone (SIGKILL included).
Two hosts with the same name, containers sharing a PID space, VMs cloned with the same boot
id: none has the other's marker file, so each treats the other's holders as alive until
their leases expire. A process reusing the PID changes nothing (the lock is the judge).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from functools import cache
from pathlib import Path

SWEEP_AFTER_SECS = 86400
_held: dict[int, tuple[str, int]] = {}  # pid -> (mark, the locked marker file's descriptor)
# (a raw descriptor, not a file object: held until the process ends, it must not warn
# "unclosed file" at exit, a raw line on stderr that JSON logs cannot hold)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


@cache
def _machine() -> tuple[str, str, str]:
    host = socket.gethostname().replace("/", "_").replace(":", "_")
    boot = _read("/proc/sys/kernel/random/boot_id").replace("-", "")[:12]
    try:
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        pidns = ""
    return host, boot, pidns


def marker_dir() -> Path:
    """Where the markers live: machine-local (tmpfs ``/dev/shm``, else the temp dir)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / "starpod-cron-holders"


def _mark() -> str:
    """This process's marker (created and locked on first use; "-" if it cannot be)."""
    pid = os.getpid()
    if pid in _held:
        return _held[pid][0]
    mark = os.urandom(8).hex()
    folder = marker_dir()
    try:
        folder.mkdir(mode=0o777, exist_ok=True)
        with contextlib.suppress(OSError):
            folder.chmod(0o1777)  # anyone may add a marker, only its owner remove it
        path = folder / mark
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)  # held (and locked)
    except OSError:
        return "-"  # no marker: this process's holders are never "provably dead"
    try:
        path.chmod(0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return "-"
    _held[pid] = (mark, fd)
    _sweep(folder)
    return mark


def _sweep(folder: Path) -> None:
    """Remove the markers of processes gone for a day (their leases expired long ago)."""
    old = time.time() - SWEEP_AFTER_SECS
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < old:
                    with open(path, "rb") as handle:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        path.unlink()


def new_owner() -> str:
    """A fresh lease-holder id for this process."""
    host, boot, pidns = _machine()
    return f"{host}/{boot or '-'}/{pidns or '-'}/{_mark()}:{os.getpid()}:{os.urandom(4).hex()}"


def is_dead(owner: str | None) -> bool:
    """True only if ``owner`` is a process of this machine (its marker file is here) that no
    longer runs (the marker's lock is free)."""
    if not owner:
        return False
    where, sep, rest = owner.partition(":")
    pid_text, sep2, _ = rest.partition(":")
    if not sep or not sep2 or not pid_text.isdigit():
        return False
    parts = where.split("/")
    host, boot, _pidns = _machine()
    if len(parts) != 4 or not boot or parts[0] != host or parts[1] != boot:
        return False
    mark = parts[3]
    if mark == "-" or not mark.isalnum() or mark == _held.get(os.getpid(), ("", -1))[0]:
        return False
    path = marker_dir() / mark
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except OSError:
        return False  # not a process of this machine (or its marker was cleaned away)
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # locked: its process (or a child it forked) still runs
        return True  # the marker stays (a retried recovery finds it dead again): see _sweep
