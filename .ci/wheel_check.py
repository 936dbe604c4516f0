"""The release check of .ci/run: the built wheel holds every web asset and SQL file of the
checkout, and, installed in a clean venv (this script runs with that venv's python, from a
directory outside the checkout), its commands work and its dashboard loads.

    python .ci/wheel_check.py contents CHECKOUT WHEEL   # any python: the wheel's file list
    VENV/bin/python CHECKOUT/.ci/wheel_check.py installed CHECKOUT   # the installed wheel
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

DATA = ("gateway/web", "starpod_cron/store/sql")


def tracked(checkout: Path) -> list[str]:
    """The package data files of the checkout (committed ones: what a release is made of)."""
    listed = subprocess.run(
        ["git", "-C", str(checkout), "ls-files", *DATA],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(listed)


def contents(checkout: Path, wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in tracked(checkout) if name not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert "starpod_cron/py.typed" in names
    print(f"wheel: {len(names)} files, every web asset and SQL file among them")


def installed(checkout: Path) -> None:
    import httpx

    import gateway

    here = Path(gateway.__file__).resolve().parent
    assert checkout.resolve() not in here.parents, f"gateway imported from the checkout: {here}"
    cli = Path(sys.executable).with_name("starpod-cron")
    for args in (["--version"], ["serve", "--help"], ["mcp", "--help"], ["jobs", "--help"]):
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stderr)
        print(f"starpod-cron {' '.join(args)}: {done.stdout.splitlines()[0]}")

    with tempfile.TemporaryDirectory(prefix="wheel-check-") as where:
        Path(where, "agent.toml").write_text(
            '[gateway]\ntokens = { "release-check-token" = { user_id = "ci", admin = true } }\n'
        )
        log = Path(where, "serve.log")
        with log.open("w") as out:
            serve = subprocess.Popen(
                [cli, "serve", "--port", "0", "--http-port", "0"],
                cwd=where,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "STARPOD_DB": str(Path(where, "jobs.db"))},
            )
        try:
            base = _served(log, serve)
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.get("/healthz").status_code == 200
                assert client.get("/openapi.json").json()["paths"]
                login = client.post(
                    "/login",
                    data={"token": "release-check-token"},
                    headers={"Origin": base.rstrip("/"), "Sec-Fetch-Site": "same-origin"},
                )
                assert login.status_code in (200, 303), login.text
                page = client.get("/")
                assert page.status_code == 200 and "<html" in page.text.lower(), page.text
                served = 0
                for name in tracked(checkout):
                    if not name.startswith("gateway/web/"):
                        continue
                    answer = client.get("/static/" + name.removeprefix("gateway/web/"))
                    expected = (here / name.removeprefix("gateway/")).read_bytes()
                    assert answer.status_code == 200 and answer.content == expected, name
                    served += 1
            print(f"dashboard from the installed wheel: / and {served} static files served")
        finally:
            serve.terminate()
            serve.wait(30)


def _served(log: Path, serve: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"Dashboard and API on (http://[^ ]+/)", log.read_text())
        if match:
            return match.group(1)
        assert serve.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"serve did not start: {log.read_text()}")


if __name__ == "__main__":
    if sys.argv[1] == "contents":
        contents(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        installed(Path(sys.argv[2]))
