"""Executors of the operations tests ([executor] kind = "python"): a run that warns, has a
thread die with a traceback, and fails, each carrying a secret (the gateway token in
$OPS_SECRET) that the logs must mask."""

from __future__ import annotations

import os
import threading
import warnings

from starpod_cron import JobContext, JobResult


def _die(secret: str) -> None:
    raise ValueError(f"a helper thread died holding {secret}")


async def warn_and_fail(ctx: JobContext) -> JobResult:
    secret = os.environ["OPS_SECRET"]
    warnings.warn(f"deprecated call with {secret}", DeprecationWarning, stacklevel=1)
    thread = threading.Thread(target=_die, args=(secret,), name="helper")
    thread.start()
    thread.join()
    raise RuntimeError(f"the model refused the key {secret}")
