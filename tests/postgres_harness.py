"""PostgreSQL for the tests: a real server, one fresh database per test, nothing left behind.

- The server is the local one at 127.0.0.1:5432 (user postgres, trust) when it answers;
  otherwise a throwaway cluster started from the installed binaries for this session
  (as an unprivileged user when we are root: initdb refuses root). Set
  SKIPLINE_TEST_POSTGRES=throwaway to force the throwaway cluster.
- Each test gets `CREATE DATABASE t_<random> TEMPLATE <a migrated template>` (fast), dropped
  afterwards WITH (FORCE); the template is dropped at the end of the session.
- Fault tests get their own throwaway cluster, which they may stop hard and restart; the
  shared local server is never stopped.

Registered as a pytest plugin by tests/conftest.py; fixtures: `postgres_server`,
`postgres_url`, `postgres_empty_url`, `postgres_fault_cluster`, `postgres_fault_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from skipline.testing import free_port

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
SUPERUSER = "postgres"
UNPRIVILEGED_USERS = ("nobody", "skipline-pg")
START_TIMEOUT = 30

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a helper thread. Works from sync
    fixtures, even ones requested while the test's event loop is running."""

    async def call() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call()).result()


# --- servers ----------------------------------------------------------------------------------
@dataclass
class PostgresServer:
    """Somewhere to create databases: host, port and a superuser (trust authentication)."""

    host: str
    port: int
    user: str = SUPERUSER

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement on the `postgres` database (CREATE/DROP DATABASE cannot run in
        a transaction, so each gets its own connection)."""

        async def execute() -> None:
            connection = await asyncpg.connect(self.url("postgres"), timeout=5)
            try:
                await connection.execute(sql, timeout=30)
            finally:
                await connection.close()

        run_async(execute)

    def reachable(self) -> bool:
        async def probe() -> bool:
            try:
                connection = await asyncpg.connect(self.url("postgres"), timeout=1.5)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return False
            await connection.close()
            return True

        return run_async(probe)

    def create_database(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ThrowawayCluster(PostgresServer):
    """A private PostgreSQL cluster in a temporary directory, on a free port, that the tests
    may stop hard and restart. Runs as an unprivileged user when we are root."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="skipline-pg-")))
    owner: pwd.struct_passwd | None = None

    @classmethod
    def create(cls) -> ThrowawayCluster:
        cluster = cls(host=LOCAL_HOST, port=free_port(), owner=unprivileged_user())
        try:
            cluster.initialise()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    def initialise(self) -> None:
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.run(
            binary("initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={self.host} "
            "-c max_connections=200"
        )
        self.run(
            binary("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", str(START_TIMEOUT), "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a hard stop, like a crash."""
        self.run(binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        status = self.run(binary("pg_ctl"), "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs and delete every file of the cluster."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = self.owner
        return subprocess.run(
            command, cwd=self.root, check=check, capture_output=True, text=True,
            timeout=START_TIMEOUT + 10, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
            user=None if owner is None else owner.pw_uid,
            group=None if owner is None else owner.pw_gid,
            extra_groups=None if owner is None else [],
        )


def unprivileged_user() -> pwd.struct_passwd | None:
    """None when we are not root; else an existing unprivileged user, created if need be."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
         UNPRIVILEGED_USERS[-1]], check=True, capture_output=True,
    )
    return pwd.getpwnam(UNPRIVILEGED_USERS[-1])


def binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, or in the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL binary {name!r} is not installed (needed by the tests)")
    return str(candidates[-1])


# --- the migrated template ---------------------------------------------------------------------
def migrate_database(url: str) -> None:
    """Open (which migrates) and close a store on `url`."""
    from skipline.store.postgres import PostgresStore

    async def migrate() -> None:
        store = PostgresStore(url)
        await store.open()
        await store.close()

    run_async(migrate)


@contextlib.contextmanager
def temporary_database(server: PostgresServer, template: str | None = None) -> Iterator[str]:
    name = server.create_database(template)
    try:
        yield name
    finally:
        server.drop_database(name)


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The local server when it answers (and is not overridden), else a throwaway cluster."""
    local = PostgresServer(LOCAL_HOST, LOCAL_PORT)
    if os.environ.get("SKIPLINE_TEST_POSTGRES") != "throwaway" and local.reachable():
        yield local
        return
    cluster = ThrowawayCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    """A database migrated once per session, copied for each test."""
    with temporary_database(postgres_server) as name:
        migrate_database(postgres_server.url(name))
        yield name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    with temporary_database(postgres_server, postgres_template) as name:
        yield postgres_server.url(name)


@pytest.fixture
def postgres_empty_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh database with no schema at all (for migration tests)."""
    with temporary_database(postgres_server) as name:
        yield postgres_server.url(name)


@pytest.fixture(scope="session")
def postgres_fault_cluster() -> Iterator[ThrowawayCluster]:
    """A dedicated throwaway cluster that fault tests stop and restart at will."""
    cluster = ThrowawayCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_fault_url(postgres_fault_cluster: ThrowawayCluster) -> Iterator[str]:
    """A fresh, empty database on the fault cluster; the cluster is running again after."""
    cluster = postgres_fault_cluster
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        if not cluster.running():
            cluster.start()
        cluster.drop_database(name)


# --- a network that can be cut --------------------------------------------------------------------
class CuttableProxy:
    """A TCP proxy to a PostgreSQL server whose "network" can be cut silently: while cut,
    bytes are dropped and nothing is closed (like a pulled cable, not a stopped server), so
    only timeouts can notice. `heal()` resets the connections that lost bytes and lets new
    ones through again. Runs on the test's own event loop."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.cut_off = False
        self._listener: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._listener is not None
        port: int = self._listener.sockets[0].getsockname()[1]
        return port

    def url(self, database_url: str) -> str:
        """`database_url` (on the proxied server) rerouted through the proxy."""
        return database_url.replace(f":{self.server.port}/", f":{self.port}/")

    async def start(self) -> None:
        self._listener = await asyncio.start_server(self._accept, LOCAL_HOST, 0)

    def cut(self) -> None:
        self.cut_off = True

    def heal(self) -> None:
        self.cut_off = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.heal()
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.cut_off:
            await self._pump(reader, None)
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            self.server.host, self.server.port,
        )
        self._writers.add(upstream_writer)
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer), self._pump(upstream_reader, writer),
            )
        finally:
            self._links.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                if sink is not None and not self.cut_off:
                    sink.write(chunk)
                    await sink.drain()
        if sink is not None:
            sink.transport.abort()
