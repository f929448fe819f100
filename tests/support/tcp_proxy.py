"""``TcpProxy``: a TCP forwarder in front of a test server that a test can cut off and restore.

Used to make a server unreachable without stopping it (moto keeps its queues in memory, so
restarting it would lose them). Two kinds of outage:

* ``cut()`` resets every open connection and every new one until ``restore()``: clients see
  "connection reset", as with a server that is down;
* ``cut(hang=True)`` accepts connections but answers nothing, on new and open ones alike: clients
  wait for their timeouts, as with a server that is stuck or a network that drops packets.
  ``restore()`` then resets the connections that were left hanging.

It runs on threads of its own, so it works the same whatever event loop the test uses.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress
from types import TracebackType

from tests.support.servers import free_port

__all__ = ["TcpProxy"]

_CHUNK = 65_536
_ACCEPT_POLL = 0.1


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), not a polite FIN: the peer sees a dead server."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        # Wakes a thread blocked in recv on it (close alone would not), sending nothing.
        sock.shutdown(socket.SHUT_RD)
    sock.close()


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port`` while not cut."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._mode: str | None = None  # None (forwarding), "reset" or "hang"
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        #: connections accepted while cut (reset at once, or left hanging)
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def cut(self, *, hang: bool = False) -> None:
        """Until ``restore``: reset every connection, or (``hang``) leave every request unanswered."""
        self._mode = "hang" if hang else "reset"
        if not hang:
            self._reset_all()

    def restore(self) -> None:
        """Forward new connections again; the ones left hanging are reset."""
        hung, self._mode = self._mode == "hang", None
        if hung:
            self._reset_all()

    def close(self) -> None:
        self._closed.set()
        self._reset_all()
        if self._acceptor is not None:
            self._acceptor.join(5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.update(sockets)

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self._mode == "reset":
                self.refused += 1
                _reset(client)
                continue
            if self._mode == "hang":
                self.refused += 1
                self._track(client)
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            self._track(client, upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        """Copy bytes one way (dropping them while hanging) until either side closes; then close both."""
        try:
            while data := source.recv(_CHUNK):
                if sink is not None and self._mode != "hang":
                    sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            owned = {source, sink} & self._open
            self._open.difference_update(owned)
        for sock in owned:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
