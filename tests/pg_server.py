"""A real, throw-away PostgreSQL server for tests and benchmarks (Debian's package).

``start_postgres()`` runs ``initdb -A trust`` and ``pg_ctl start`` on a fresh data
directory and a free loopback port, as the ``postgres`` user when running as root
(PostgreSQL refuses to run as root: DESIGN "Known pitfalls"), and returns a
:class:`PgServer` with its DSN; ``stop()`` shuts it down and removes the directory.
``why_not()`` says in one line why it cannot run here (no binaries, no psycopg, no
``postgres`` user), or returns ``""``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "pg_bin", "start_postgres", "why_not"]


def pg_bin() -> Path | None:
    """Directory of Debian's PostgreSQL server binaries (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def why_not() -> str:
    """Why a PostgreSQL test server cannot run here ("" when it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (3) is not installed: pip install 'psycopg[binary]'"
    if pg_bin() is None:
        return ("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin "
                "(apt-get install postgresql; .ci/run does it)")
    if os.geteuid() == 0:
        import pwd
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    root: Path
    port: int
    bindir: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, check=True):
        return _as_postgres([str(a) for a in args], check=check)

    def new_database(self, name: str) -> str:
        """Create an empty database; its DSN."""
        import psycopg
        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.root / "data", "-m", "immediate",
                  "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres(cmd: list[str], check=True):
    if os.geteuid() == 0:
        import shlex
        cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def start_postgres() -> PgServer:
    """Start a fresh server (see module docstring); raise RuntimeError if it fails."""
    why = why_not()
    if why:
        raise RuntimeError(why)
    bindir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="skytwin-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    srv = PgServer(root, port, bindir)
    try:
        r = _as_postgres([str(bindir / "initdb"), "-A", "trust", "-U", "postgres", "-E",
                          "UTF8", "-D", str(root / "data")], check=False)
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-400:]}")
        opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                "-c fsync=on -c synchronous_commit=on -c max_connections=200")
        r = _as_postgres([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l",
                          str(root / "log"), "-o", opts, "-w", "-t", "60", "start"],
                         check=False)
        if r.returncode:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()[-300:]} "
                               f"{log[-300:]}")
        import psycopg
        t0 = time.monotonic()
        while True:
            try:
                psycopg.connect(srv.dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() - t0 > 30:
                    raise
                time.sleep(0.2)
    except BaseException:
        srv.stop()
        raise
    return srv
