"""A stand-in for ``starpod_cron.devpg.LocalPostgres`` (same interface) over Debian's
PostgreSQL binaries, run as the ``postgres`` system user, until that helper lands."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


class DevPostgresError(RuntimeError):
    pass


class LocalPostgres:
    def __init__(
        self,
        data_dir: Path,
        *,
        listen: str | None = None,
        port: int = 0,
        wrap: Sequence[str] = (),
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.listen = listen
        self.port = port or 5432
        self.wrap = tuple(wrap)
        self.settings = dict(settings or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.listen}:{self.port}/postgres"

    def _as_postgres(self, *cmd: str) -> list[str]:
        return [*self.wrap, "runuser", "-u", "postgres", "--", *cmd]

    def start(self) -> str:
        if not BIN.exists():
            raise DevPostgresError(f"no PostgreSQL binaries in {BIN}")
        account = pwd.getpwnam("postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            self.data_dir.chmod(0o700)
            for parent in self.data_dir.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o001)
            subprocess.run(
                self._as_postgres(
                    str(BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                ),
                check=True,
                capture_output=True,
            )
            with open(self.data_dir / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")
        options = {
            "listen_addresses": self.listen or "",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "fsync": "off",
            **self.settings,
        }
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(
            self._as_postgres(
                str(BIN / "postgres"),
                "-D",
                str(self.data_dir),
                *(f"-c{k}={v}" for k, v in options.items()),
            ),
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run(
                [
                    *self.wrap,
                    str(BIN / "pg_isready"),
                    "-h",
                    self.listen or "",
                    "-p",
                    str(self.port),
                    "-q",
                ],
                check=False,
            )
            if ready.returncode == 0:
                return self.url
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.data_dir / "server.log").read_text()[-2000:]
                raise DevPostgresError(f"PostgreSQL did not start: {tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is None:
            return
        try:  # SIGINT to the postmaster: a fast shutdown (clients cut, nothing lost)
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            self._proc.terminate()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
