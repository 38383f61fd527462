"""Test helpers for code that talks to databases: engines, test databases, outages.

Used by the kernel's data-layer tests and by driver and data-source plugins.
:func:`database_config` gives a site's ``databases`` entry for an engine
(``sqlite``, ``postgres``, ``mysql``) after making sure the test database
exists; when a server cannot be reached the test is skipped with the
reason, or fails when ``AHCORE_REQUIRE_SERVICES=1``.

Servers default to this machine (trust/empty-password root accounts);
override with ``AHCORE_TEST_PG`` / ``AHCORE_TEST_MYSQL`` holding JSON
connection kwargs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

ENGINES = ("sqlite", "postgres", "mysql")
# AHCORE_TEST_DATABASE names another one, so that two suites running at once
# on one machine (two checkouts) do not drop each other's tables. Under
# pytest-xdist each worker (PYTEST_XDIST_WORKER: gw0, gw1, ...) gets its own
# database as well: the tests drop and recreate tbl1, and two workers in one
# database would see each other's rows.
TEST_DATABASE = os.environ.get("AHCORE_TEST_DATABASE", "ahcore_test") + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}"
    if os.environ.get("PYTEST_XDIST_WORKER", "").isidentifier()
    else ""
)
if not TEST_DATABASE.isidentifier():
    raise ValueError(f"AHCORE_TEST_DATABASE must be a plain identifier, got {TEST_DATABASE!r}")


def require_services() -> bool:
    return os.environ.get("AHCORE_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when services are required."""
    if require_services():
        pytest.fail(f"service required but unavailable: {reason}")
    pytest.skip(reason)


def server_kwargs(engine: str) -> dict[str, Any]:
    """Connection kwargs of the engine's test server (without the database)."""
    if engine == "postgres":
        default = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
        return {**default, **json.loads(os.environ.get("AHCORE_TEST_PG", "{}"))}
    if engine == "mysql":
        default = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
        return {**default, **json.loads(os.environ.get("AHCORE_TEST_MYSQL", "{}"))}
    raise ValueError(engine)


async def _ensure_postgres(kw: dict[str, Any]) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(
        **{k: v for k, v in kw.items() if v != ""},
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )
    async with conn:
        cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEST_DATABASE])
        if await cur.fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                await conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')


async def _ensure_mysql(kw: dict[str, Any]) -> None:
    import aiomysql

    conn = await aiomysql.connect(**kw, connect_timeout=3)
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [TEST_DATABASE]
            )
            if not await cur.fetchone():
                await cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{TEST_DATABASE}` CHARACTER SET utf8mb4"
                )
    finally:
        conn.close()


async def ensure_test_database(engine: str) -> None:
    """Create the engine's test database if needed; skip (or fail) when unreachable."""
    try:
        if engine == "postgres":
            await _ensure_postgres(server_kwargs(engine))
        elif engine == "mysql":
            await _ensure_mysql(server_kwargs(engine))
    except ImportError as exc:
        # A missing driver plugin is not a missing service (the kernel-only
        # session runs without them): skip even when services are required.
        pytest.skip(f"{engine}: driver not installed ({exc})")
    except Exception as exc:
        unavailable(f"{engine} server unreachable: {type(exc).__name__}: {exc}")


async def database_config(
    engine: str, workdir: Path, *, maxconn: int = 4, acquire_timeout: float = 2.0, **override: Any
) -> dict[str, Any]:
    """A ``databases`` entry for ``engine`` pointing at its (existing) test database.

    ``override`` replaces connection kwargs (e.g. ``port`` of a proxy).
    """
    if engine == "sqlite":
        kwargs: dict[str, Any] = {"dbname": str(workdir / "test.db")}
        driver = "aiosqlite"
    else:
        await ensure_test_database(engine)
        kwargs = server_kwargs(engine)
        if engine == "postgres":
            kwargs["dbname"] = TEST_DATABASE
            driver = "psycopg"
        else:
            kwargs["db"] = TEST_DATABASE
            driver = "aiomysql"
    kwargs.update(override)
    return {
        "driver": driver,
        "kwargs": kwargs,
        "maxconn": maxconn,
        "acquire_timeout": acquire_timeout,
    }


class TcpProxy:
    """A TCP forwarder to a database server that a test can cut and restore.

    ``stop()`` closes the listener and every forwarded connection (the
    database "goes away"); ``start()`` listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


# ---------------------------------------------------------------- private servers


def free_port() -> int:
    """A TCP port nothing listens on right now (for a private server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(*argv: str, timeout: float = 60) -> str:
    """Run a command; its output, or RuntimeError with the output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{argv[0]} took longer than {timeout} s") from None
    text = out.decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{text[-2000:]}")
    return text


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder, on a free port.

    Made for tests that really stop and start a database server. Needs the
    server binaries (``initdb``, ``pg_ctl``) and root, because the cluster
    runs as the ``postgres`` user (``initdb`` refuses root). Use
    :meth:`missing` to skip when that is not so. Trust authentication, user
    ``postgres``, database ``postgres``. Nothing is synced to disk
    (``fsync=off``), but each commit is written before it is acknowledged:
    the data survives a clean or an immediate stop, not a machine crash.
    """

    def __init__(self, root: Path) -> None:
        self.bin = self.find_bin()
        self.root = root
        self.data = root / "data"
        self.port = free_port()

    @staticmethod
    def find_bin() -> Path | None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
            if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
                return candidate
        found = shutil.which("pg_ctl")
        return Path(found).parent if found and shutil.which("initdb") else None

    @classmethod
    def missing(cls) -> str | None:
        """Why a private cluster cannot run here, or ``None``."""
        if cls.find_bin() is None:
            return "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.geteuid() != 0:
            return "a private PostgreSQL cluster needs root (it runs as the postgres user)"
        if shutil.which("runuser") is None:
            return "runuser not found"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user"
        return None

    def kwargs(self) -> dict[str, Any]:
        """Connection kwargs for a site's ``databases`` entry."""
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "dbname": "postgres"}

    async def _as_postgres(self, *argv: str, timeout: float = 60) -> str:
        return await _run("runuser", "-u", "postgres", "--", *argv, timeout=timeout)

    async def init(self) -> None:
        assert self.bin is not None
        shutil.chown(self.root, "postgres")
        await self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    async def start(self) -> None:
        assert self.bin is not None
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        await self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "30", "start",
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (sessions ended cleanly) or ``immediate`` (a crash)."""
        assert self.bin is not None
        await self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"
        )

    async def close(self) -> None:
        """Stop the cluster if it runs; the folder is the caller's (``tmp_path``)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                await self.stop("immediate")


class PrivateMariaDB:
    """A throw-away MariaDB server in a temporary folder, on a free port.

    ``mariadb-install-db`` makes the data folder, ``mariadbd`` runs as a
    child process with ``--skip-grant-tables`` (user ``root``, no
    password). :meth:`stop` ends it with SIGTERM (a clean shutdown) or
    SIGKILL (a crash); :meth:`start` starts it again on the same folder.
    Needs root (the server runs as root here) and the binaries.
    """

    INSTALL = ("mariadb-install-db", "mysql_install_db")
    SERVER = ("mariadbd", "mysqld")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self._created = False

    @staticmethod
    def _which(names: tuple[str, ...]) -> str | None:
        for name in names:
            for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"):
                path = Path(folder) / name
                if path.exists():
                    return str(path)
            found = shutil.which(name)
            if found:
                return found
        return None

    @classmethod
    def missing(cls) -> str | None:
        if cls._which(cls.INSTALL) is None or cls._which(cls.SERVER) is None:
            return "MariaDB server binaries (mariadb-install-db, mariadbd) not found"
        if os.geteuid() != 0:
            return "a private MariaDB server runs as root in these tests"
        return None

    def kwargs(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": "root", "password": "",
                "db": TEST_DATABASE}  # fmt: skip

    async def init(self) -> None:
        install = self._which(self.INSTALL)
        assert install is not None
        await _run(
            install, "--no-defaults", f"--datadir={self.data}", "--user=root",
            "--auth-root-authentication-method=normal", "--skip-test-db",
        )  # fmt: skip

    async def start(self) -> None:
        server = self._which(self.SERVER)
        assert server is not None
        self.proc = await asyncio.create_subprocess_exec(
            server, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.root / 'mysqld.sock'}",
            f"--pid-file={self.root / 'mysqld.pid'}", "--user=root", "--skip-grant-tables",
            f"--log-error={self.root / 'server.log'}", "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=2",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        import aiomysql

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await aiomysql.connect(
                    host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1
                )
            except Exception:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    log_text = (self.root / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"mariadbd did not start:\n{log_text}") from None
                await asyncio.sleep(0.1)
                continue
            try:
                if not self._created:
                    async with conn.cursor() as cur:
                        await cur.execute(f"CREATE DATABASE `{TEST_DATABASE}`")
                    self._created = True
            finally:
                conn.close()
            return

    async def stop(self, mode: str = "fast") -> None:
        """``fast``: SIGTERM, a clean shutdown; ``immediate``: SIGKILL, a crash."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGKILL if mode == "immediate" else signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def close(self) -> None:
        await self.stop("immediate")


# ---------------------------------------------------------------- fixtures
# Import these into a conftest.py (``from ahcore.testing.databases import engine, db_client``).

TBL1 = """CREATE TABLE tbl1 (
    id VARCHAR(32) PRIMARY KEY,
    field1 INTEGER,
    name VARCHAR(100),
    price NUMERIC(10, 2),
    created DATE
)"""


async def reset_tables(pools: Any, dbname: str = "db1") -> None:
    """Drop and recreate ``tbl1`` (the tests share one database per server)."""
    async with pools.sqlorContext(dbname) as sor:
        if "tbl1" in [t.lower() for t in await _tables(sor)]:
            await sor.sqlExe("DROP TABLE tbl1", {})
        await sor.sqlExe(TBL1, {})
    pools.clear_schema_cache()


async def _tables(sor: Any) -> list[str]:
    if sor.dialect.name == "sqlite":
        rows = await sor.sqlExe("SELECT name FROM sqlite_master WHERE type = 'table'", {})
    else:
        rows = await sor.sqlExe(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
            if sor.dialect.name == "postgres"
            else "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = DATABASE()",
            {},
        )
    return [r["name"] for r in rows]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on sqlite, postgres and mysql."""
    return str(request.param)


@pytest.fixture
def db_client(engine: str, make_site: Any, ahcore_client: Any, tmp_path: Path) -> Any:
    """``client = await db_client(files={...}, maxconn=2, plugins={...}, **kwargs_override)``.

    Starts a site whose database ``db1`` is the engine's test database with
    a fresh ``tbl1``. ``plugins`` (e.g. ``{"dspy": True, "sqlds": {...}}``)
    become the site's plugins section, with the driver added, and each
    processor plugin named there is mapped to its suffix. ``aliases`` are
    more database names for the same database. ``client.pools``
    is the app's :class:`ahcore.db.pools.DBPools`.
    """
    from ahcore.db.pools import get_pools
    from ahcore.plugins import canonical_driver

    async def start(
        files: dict[str, str] | None = None,
        *,
        maxconn: int = 4,
        acquire_timeout: float = 2.0,
        plugins: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
        **override: Any,
    ) -> Any:
        db = await database_config(
            engine, tmp_path, maxconn=maxconn, acquire_timeout=acquire_timeout, **override
        )
        config: dict[str, Any] = {
            "website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": "x" * 32},
            "databases": {"db1": db, **{alias: db for alias in aliases}},
        }
        if plugins is not None:
            config["plugins"] = {canonical_driver(db["driver"]): True, **plugins}
            config["website"]["processors"] = [
                [f".{name}", name] for name in plugins if name in ("dspy", "sqlds")
            ]
        client = await ahcore_client(make_site(config=config, files=files or {}))
        client.pools = get_pools(client.app)
        await reset_tables(client.pools)
        return client

    return start
