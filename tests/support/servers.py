"""Real servers for tests: Redis, SQS (moto's server) and MongoDB's wire protocol (SecantusDB).

Each runs as a child process on a free port of 127.0.0.1 and is stopped with it. A missing binary
is an error, never a skip: a suite that silently tests less is worse than a red one.
SecantusDB is GPL: it is only ever launched as a process, never imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "AWS_TEST_ENV",
    "MongoServer",
    "MotoServer",
    "RedisServer",
    "Server",
    "free_port",
    "unique_name",
]

START_TIMEOUT = 30.0

#: dummy credentials for moto; real AWS must never be reached from the tests
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str = "t") -> str:
    """A short name no other test uses: for databases, queue prefixes and channel prefixes."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def find_binary(name: str) -> str:
    """The binary ``name`` from the venv or PATH; raise (fail the test) when it is missing."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (neither beside {sys.executable} nor on PATH)")
    return found


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class Server:
    """A child process listening on ``port``; ``start`` returns once it answers ``ready()``."""

    name = "server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"jobpulse-{self.name}-"))
        self.log_path = self.workdir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return _accepts(self.port)

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir
            )
        self._wait_until(self.ready, f"{self.name} did not start on port {self.port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process (``SIGKILL`` to simulate a crash) and wait until the port is closed."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        self._wait_until(lambda: not _accepts(self.port), f"{self.name} still listens on {self.port}")

    def restart(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop and start again on the same port (clients see their connections drop)."""
        self.stop(sig)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _wait_until(self, check: Callable[[], bool], message: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not check():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{message}: it exited with {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message} within {START_TIMEOUT}s; see {self.log_path}")
            time.sleep(0.02)


def _answers(port: int, request: bytes, expected: bytes) -> bool:
    """Whether something on ``port`` answers ``request`` with a reply starting with ``expected``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(request)
            return sock.recv(len(expected)).startswith(expected)
    except OSError:
        return False


class RedisServer(Server):
    """``redis-server`` with no persistence."""

    name = "redis"

    def command(self) -> list[str]:
        return [
            find_binary("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip

    def ready(self) -> bool:
        return _answers(self.port, b"PING\r\n", b"+PONG")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class MotoServer(Server):
    """moto's SQS (and every other AWS service) over HTTP."""

    name = "moto"

    def command(self) -> list[str]:
        return [find_binary("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict[str, str]:
        return {**os.environ, **AWS_TEST_ENV}

    def ready(self) -> bool:
        return _answers(self.port, b"GET /moto-api/ HTTP/1.0\r\n\r\n", b"HTTP/")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class MongoServer(Server):
    """SecantusDB, a single-node MongoDB wire-protocol server, with its files in a temp dir."""

    name = "secantusdb"

    def command(self) -> list[str]:
        return [
            find_binary("secantusd-py"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.workdir / "data"),
            "--log-level", "WARNING",
        ]  # fmt: skip

    def ready(self) -> bool:
        if not _accepts(self.port):
            return False
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, object]] = MongoClient(self.url, serverSelectionTimeoutMS=1000)
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"
