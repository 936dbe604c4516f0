"""APScheduler 4 lives in its own directory: it is the same package (``apscheduler``) as the
APScheduler 3.11 that ``pip install -e '.[bench]'`` puts in the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APS4_DIR = Path(__file__).resolve().parent / ".peers" / "apscheduler4"
APS4_REQUIREMENTS = ["apscheduler[sqlalchemy]==4.0.0a6", "aiosqlite", "sniffio"]


def ensure_aps4() -> Path:
    """Install APScheduler 4.0.0a6 into bench/.peers on first use; return its directory."""
    if not (APS4_DIR / "apscheduler" / "_schedulers").is_dir():
        print(f"installing {', '.join(APS4_REQUIREMENTS)} into {APS4_DIR} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(APS4_DIR),
                *APS4_REQUIREMENTS,
            ],
            check=True,
        )
    return APS4_DIR
