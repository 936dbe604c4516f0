"""What the command executor hands a program of a job with ``context = "last"``: the job's
previous successful result in its environment (``STARPOD_PREVIOUS_RESULT``, the first 32 KiB
cut on a character boundary; ``STARPOD_PREVIOUS_RESULT_FILE``, a file holding the whole text;
``STARPOD_PREVIOUS_AT``, when that run ended, ISO 8601). The file is private to the run (0600
in a 0700 directory of its own) and removed when the run ends, however it ends. Nothing is set
when the job has no previous result."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ..models import JobContext

ENV_LIMIT_BYTES = 32 * 1024
VARIABLES = ("STARPOD_PREVIOUS_RESULT", "STARPOD_PREVIOUS_RESULT_FILE", "STARPOD_PREVIOUS_AT")
log = logging.getLogger("starpod_cron.executors")


def env_text(text: str, limit: int = ENV_LIMIT_BYTES) -> str:
    """The first ``limit`` bytes of ``text`` in UTF-8, cut on a character boundary."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


@contextmanager
def previous_result_env(ctx: JobContext) -> Iterator[dict[str, str]]:
    """The variables for the run's program (empty without a previous result); the file they
    name exists until the block ends."""
    if ctx.previous_result is None:
        yield {}
        return
    folder = tempfile.mkdtemp(prefix="starpod-cron-run-")  # 0700, this user's only
    try:
        path = os.path.join(folder, "previous_result.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(ctx.previous_result)
        env = {
            "STARPOD_PREVIOUS_RESULT": env_text(ctx.previous_result),
            "STARPOD_PREVIOUS_RESULT_FILE": path,
        }
        if ctx.previous_at is not None:
            env["STARPOD_PREVIOUS_AT"] = ctx.previous_at.isoformat()
        yield env
    finally:
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("cannot remove %s (a previous result given to a run): %s", folder, exc)
