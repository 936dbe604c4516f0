"""Who holds a lease: ``host/boot/pidns:pid:random``, and whether that holder is provably dead.

A holder is provably dead only when it ran on this machine, in this boot and in this PID
namespace, and its process no longer exists. Anything else (another machine, a container with
its own PID namespace, a process that still exists, possibly a new one reusing the PID) is
treated as alive until its lease expires: the shortcut never makes a live holder look dead.
"""

from __future__ import annotations

import os
import socket
from functools import cache


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


def new_owner() -> str:
    """A fresh lease-holder id for this process."""
    host, boot, pidns = _machine()
    return f"{host}/{boot or '-'}/{pidns or '-'}:{os.getpid()}:{os.urandom(4).hex()}"


def is_dead(owner: str | None) -> bool:
    """True only if ``owner`` is a process of this machine, boot and PID namespace that no
    longer exists."""
    if not owner:
        return False
    where, sep, rest = owner.partition(":")
    pid_text, sep2, _ = rest.partition(":")
    if not sep or not sep2 or not pid_text.isdigit():
        return False
    host, boot, pidns = _machine()
    if not boot or not pidns or where != f"{host}/{boot}/{pidns}":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
