"""A real, throw-away PostgreSQL server in a temporary folder (Debian's `postgresql` package), for tests and benches.

    from tests.helpers.postgres import PostgresServer, postgres_problem
    if (why := postgres_problem()): pytest.skip(why)
    with PostgresServer() as pg:
        url = pg.url            # postgresql://fer@127.0.0.1:<port>/fer

initdb + pg_ctl on a free loopback port, trust authentication on loopback only, everything under one
temporary folder that is removed on exit. PostgreSQL refuses to run as root: as root the server runs
as the `postgres` user the package creates (runuser).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers.broker import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_problem() -> str | None:
    """Why a PostgreSQL server cannot be started here (None when it can)."""
    for name in ("initdb", "pg_ctl"):
        if _bin(name) is None:
            return f"{name} not found (apt install postgresql; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as (apt install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    return None


class PostgresServer:
    """initdb + pg_ctl start in a temporary folder; ``url`` to connect; stopped and removed by close()."""

    def __init__(self, database: str = "fer", user: str = "fer") -> None:
        self.database, self.user = database, user
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fer-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/{database}"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *cmd: str) -> str:
        out = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120, cwd=self.dir)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {(out.stderr or out.stdout).strip()[-2000:]}")
        return out.stdout

    def start(self) -> "PostgresServer":
        self._run(_bin("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c shared_buffers=64MB -c max_connections=40")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "server.log"), "-w",
                  "-t", "60", "start")
        import psycopg
        with psycopg.connect(f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def stop(self) -> None:
        """Stop the server (its data stays: start_again() brings it back)."""
        if (self.data / "postmaster.pid").exists():
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
