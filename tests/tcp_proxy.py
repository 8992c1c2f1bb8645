"""A TCP proxy a test can stop and start, to give a real server a real outage.

    with TcpProxy("127.0.0.1", 5432) as proxy:          # listening on proxy.port
        url = proxy.url_for("postgresql://postgres@127.0.0.1:5432/db")
        ...                                              # the app talks to PostgreSQL
        proxy.stop()    # the listener closes and every open connection is cut: "down"
        ...             # new connections are refused, old ones got EOF
        proxy.start()   # the same port again: "back"

Nothing is mocked: the client library sees exactly what a server restart shows it (cut
connections, then refused ones), and the server behind is the real one. Threads only: one
accepting, two per connection copying bytes each way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

CHUNK = 65536


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` while started."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or _free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._pumps: list[threading.Thread] = []
        self.connections_made = 0

    # --- the outage a test drives --------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        """Listen (again) on the same port; returns once connections are accepted."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name=f"tcp-proxy-{self.port}", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener (new connections are refused) and cut every open connection;
        returns once no thread of the proxy is left."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join(5)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
            pumps, self._pumps = self._pumps, []
        for sock in sockets:
            _cut(sock)
        for pump in pumps:
            pump.join(5)

    def url_for(self, url: str) -> str:
        """`url` (postgresql://, redis://, ...) with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the copying ------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _cut(client)  # the real server is down: so is the proxy, for this one
                continue
            with self._lock:
                if self._listener is not listener:  # stopped while connecting
                    _cut(client)
                    _cut(upstream)
                    return
                self.connections_made += 1
                self._sockets.update((client, upstream))
                done = threading.Barrier(2, action=lambda c=client, u=upstream: self._close(c, u))
                for source, sink in ((client, upstream), (upstream, client)):
                    pump = threading.Thread(target=_pump, args=(source, sink, done), daemon=True)
                    self._pumps.append(pump)
                    pump.start()

    def _close(self, *sockets: socket.socket) -> None:
        """Both directions of a connection ended: forget it."""
        with self._lock:
            self._sockets.difference_update(sockets)
            self._pumps = [pump for pump in self._pumps if pump.is_alive()]
        for sock in sockets:
            _cut(sock)


def _pump(source: socket.socket, sink: socket.socket, done: threading.Barrier) -> None:
    """Copy until either side closes; then close the other direction too."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait(10)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
