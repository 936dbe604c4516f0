"""A wall clock set wrong on purpose: this machine's, ``offset_secs`` off (what a host whose
NTP failed, or a VM resumed from a snapshot, reads)."""

from __future__ import annotations

from starpod_cron import SystemClock


class SkewedClock(SystemClock):
    def __init__(self, offset_secs: float) -> None:
        self.offset_ms = round(offset_secs * 1000)

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms
