"""Lease holders (owner.py): "the holder is on this machine and gone, take over at once" must
never misfire on another host that shares this one's host name, boot id or PID space (VMs
cloned from one snapshot, containers sharing the host's PID namespace): this machine is
proven by the holder's marker file and its lock, not by names and numbers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from starpod_cron.owner import _machine, is_dead, marker_dir, new_owner
from tests.processes import environment

CHILD = "from starpod_cron.owner import new_owner; print(new_owner(), flush=True); input()"


def free_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_a_holder_with_this_machines_names_but_not_its_marker_is_alive() -> None:
    """Another host: same host name, same boot id (a cloned VM), same PID namespace inode
    (4026531836 is every machine's first one), a PID that is free here."""
    host, boot, pidns = _machine()
    assert boot, "this machine has a boot id"
    elsewhere = f"{host}/{boot}/{pidns}/{uuid.uuid4().hex[:16]}:{free_pid()}:abcd1234"
    assert not is_dead(elsewhere)
    # the same, in the id format of earlier versions (no marker): alive until it expires
    assert not is_dead(f"{host}/{boot}/{pidns}:{free_pid()}:abcd1234")
    assert not is_dead(new_owner())  # this process itself


def holder(*wrap: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [*wrap, sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


UNSHARE = shutil.which("unshare")
namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or UNSHARE is None, reason="needs root and unshare(1)"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param((), id="plain"),
        # its own UTS and network namespaces (the chaos harness's nodes): the same machine
        pytest.param(("unshare", "--uts", "--net"), id="own-net", marks=namespaces),
        # its own PID namespace: its PID means nothing here, its lock still does
        pytest.param(
            ("unshare", "--pid", "--fork", "--kill-child", "--mount-proc"),
            id="own-pid",
            marks=namespaces,
        ),
    ],
)
def test_a_killed_holder_of_this_machine_is_dead_at_once(wrap: tuple[str, ...]) -> None:
    child, owner = holder(*wrap)
    try:
        assert owner.count("/") == 3 and (marker_dir() / owner.split("/")[3].split(":")[0]).exists()
        assert not is_dead(owner)  # alive: never
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    if wrap and "--fork" in wrap:  # unshare's child (the holder) dies with its namespace
        for _ in range(100):
            if is_dead(owner):
                break
            subprocess.run(["sleep", "0.05"], check=True)
    assert is_dead(owner)
    assert is_dead(owner)  # still dead for the next one asking (a retried recovery)
