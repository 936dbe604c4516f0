"""systemd's readiness protocol (``Type=notify``), the documented datagram in a few lines
(sd_notify(3)): ``READY=1`` once the node serves, ``STOPPING=1`` when it begins to stop,
``WATCHDOG=1`` every half ``WatchdogSec`` while ``$WATCHDOG_USEC`` is set (and
``$WATCHDOG_PID``, if set, is this process). Without ``$NOTIFY_SOCKET`` every call does nothing.
A failed send is logged once, never raised: readiness must not stop the service."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("starpod_cron.sdnotify")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address
        self.watchdog_secs: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if address and usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid())):
            self.watchdog_secs = int(usec) / 1_000_000
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, state: str) -> None:
        """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to the manager."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at $NOTIFY_SOCKET: %s", exc.strerror or exc)

    async def watchdog(self) -> None:
        """``WATCHDOG=1`` every half interval, until cancelled (a TaskSet task)."""
        if self.watchdog_secs is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_secs / 2)
