"""A private PostgreSQL server for a test: ``initdb`` in a temporary folder, ``postgres`` on
127.0.0.1 and a free port, password authentication, one database; stopped and removed after.

PostgreSQL refuses to run as root: when the tests run as root, the server runs as ``nobody``
(the data folder is made theirs). The binaries are Debian's (``postgresql`` package), found in
``/usr/lib/postgresql/<version>/bin`` or on PATH.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

from tests.support.processes import free_port

START_SECONDS = 60.0
SERVER_USER = "nobody"


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return versions[-1].parent if versions else None


def available() -> bool:
    return _binaries() is not None


class PostgresServer:
    """``with PostgresServer(database="chat", user="chat", password=...) as server: ...``"""

    def __init__(self, database: str, user: str, password: str) -> None:
        binaries = _binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
        self.bin = binaries
        self.database, self.user, self.password = database, user, password
        self.host, self.port = "127.0.0.1", free_port()
        self.root = Path(tempfile.mkdtemp(prefix="channelworks-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        self._user = SERVER_USER if self._as_root else None  # the server's user and group
        self._group = pwd.getpwnam(SERVER_USER).pw_gid if self._as_root else None

    def __enter__(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self._as_root:
            owner = pwd.getpwnam(SERVER_USER)
            for path in (self.root, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [str(self.bin / "initdb"), "--pgdata", str(self.data), "--username", self.user,
             "--pwfile", str(password_file), "--auth", "scram-sha-256", "--encoding", "UTF8",
             "--no-sync"],
            check=True, capture_output=True, timeout=120, user=self._user, group=self._group,
        )  # fmt: skip
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), "-h", self.host,
                 "-p", str(self.port), "-k", "", "-c", "fsync=off", "-c", "max_connections=200"],
                stdout=log, stderr=subprocess.STDOUT, user=self._user, group=self._group,
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
                    connection.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError as error:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    output = self.log.read_text()
                    raise RuntimeError(f"PostgreSQL did not start:\n{output}") from error
                time.sleep(0.2)

    def dsn(self, database: str | None = None) -> str:
        return (
            f"host={self.host} port={self.port} dbname={database or self.database} "
            f"user={self.user} password={self.password} connect_timeout=5"
        )

    @property
    def env(self) -> dict[str, str]:
        """The variables examples/chat/k8s/k8s_settings.py reads."""
        return {
            "DATABASE_HOST": self.host,
            "DATABASE_PORT": str(self.port),
            "DATABASE_NAME": self.database,
            "DATABASE_USER": self.user,
            "DATABASE_PASSWORD": self.password,
        }

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown (SIGTERM waits for clients)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
