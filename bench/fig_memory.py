"""Figure 7: resident memory per idle websocket (7a), per extra subscription on one (7b), and
what comes back after they close (7c), each beside a bare uvicorn websocket in the same run.

* 7a: 10,000 websockets with one ``jobUpdated`` each on a fresh ``jobpulse api``; the bare
  baseline holds 10,000 websockets on ``bench.bare``'s ``/idle`` (same uvicorn setup).
* 7c: the same server's RSS 30 s after those 10,000 closed, against its RSS before they opened.
* 7b: on another fresh ``jobpulse api``, 1,000 websockets with one subscription each, then 10
  more subscriptions on each (11,000 in all): the growth divided by the 10,000 added.

Clients offer permessage-deflate, as browsers do (the servers decline it by default). Every
RSS is read after a 200-socket warm-up opened and closed, then once it stopped moving.

``python -m bench.fig_memory [--sockets N] [--env NAME=VALUE] [--tree DIR]`` prints the rows
(smaller N for a quick look; ``--tree``: the servers run another checkout's code, for a before/after).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.fig_subs import Clients, write_ids
from bench.procs import PYTHON, Proc, free_port, jobpulse, jobpulse_env, rss_kib, scratch_dir
from bench.report import Row, table
from bench.seed import submit_jobs

__all__ = ["figure7"]

SOCKETS = 10_000
SHARED_SOCKETS = 1_000
EXTRA_PER_SOCKET = 10
WARMUP = 200
AFTER_CLOSE_SECONDS = 30
#: seconds the clients may take to open every socket (on a busy machine 10,000 took over 5 minutes)
OPEN_TIMEOUT = 900
#: RSS is read once two readings this far apart differ by less than 0.5% (or after ``STEADY_MAX``)
STEADY_STEP = 0.5
STEADY_MAX = 8.0


def steady_rss(pid: int) -> int:
    """RSS (KiB) once it stopped moving: allocation lags the clients' last answer a little."""
    deadline = time.monotonic() + STEADY_MAX
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(STEADY_STEP)
        now = rss_kib(pid)
        if abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


@dataclass
class Held:
    """RSS (KiB) of one server: fresh, after the warm-up, with the sockets open, after they closed."""

    fresh: int
    start: int
    held: int
    after: int = 0
    extra: int = 0  # with the extra subscriptions (7b)

    def per(self, count: int, top: int | None = None, base: int | None = None) -> float:
        return ((top if top is not None else self.held) - (base if base is not None else self.start)) / count


def _warm(pid: int, ws_url: str, ids_file: Path, name: str, bare: bool) -> tuple[int, int]:
    fresh = steady_rss(pid)
    warm = Clients("hold", ws_url, ids_file, WARMUP, f"{name}-warmup", bare)
    try:
        warm.ready()
        warm.say("close")
    finally:
        warm.stop()
    return fresh, steady_rss(pid)


def hold_and_close(server: Proc, ws_url: str, ids_file: Path, name: str, bare: bool, sockets: int) -> Held:
    """7a and 7c on one fresh server: ``sockets`` open, then closed for ``AFTER_CLOSE_SECONDS``."""
    fresh, start = _warm(server.pid, ws_url, ids_file, name, bare)
    clients = Clients("hold", ws_url, ids_file, sockets, name, bare)
    try:
        if clients.ready(OPEN_TIMEOUT) != sockets:
            raise RuntimeError("not every websocket opened")
        held = steady_rss(server.pid)
        clients.say("close")
    finally:
        clients.stop()
    time.sleep(AFTER_CLOSE_SECONDS)  # the figure is the RSS at this time after the close, by definition
    return Held(fresh, start, held, rss_kib(server.pid))


def shared(server: Proc, ws_url: str, ids_file: Path, name: str, sockets: int) -> Held:
    """7b on one fresh server: ``sockets`` websockets with one subscription each, then
    ``EXTRA_PER_SOCKET`` more on each."""
    fresh, start = _warm(server.pid, ws_url, ids_file, name, False)
    clients = Clients("hold", ws_url, ids_file, sockets, name, False)
    try:
        if clients.ready(OPEN_TIMEOUT) != sockets:
            raise RuntimeError("not every websocket opened")
        held = steady_rss(server.pid)
        added = sum(int(line.split()[1]) for line in clients.say(f"add {EXTRA_PER_SOCKET}", OPEN_TIMEOUT))
        if added != sockets * EXTRA_PER_SOCKET:
            raise RuntimeError(f"only {added} extra subscriptions opened")
        extra = steady_rss(server.pid)
        clients.say("close")
    finally:
        clients.stop()
    return Held(fresh, start, held, extra=extra)


def _bare(name: str, run: Callable[[Proc, str], Held]) -> Held:
    port = free_port()
    server = Proc(name, [PYTHON, "-m", "bench.bare", "--port", str(port)])
    try:
        server.wait_http(f"http://127.0.0.1:{port}/readyz")
        return run(server, f"ws://127.0.0.1:{port}/idle")
    finally:
        server.stop()


#: another checkout's code for the jobpulse servers (``--tree``: a before/after in one run)
TREE: Path | None = None


def _start(name: str, data: Path, **env: str) -> tuple[Proc, str]:
    if TREE is None:
        return jobpulse("api", name, data, **env)
    port = free_port()
    environment = {**jobpulse_env(data, port, **env), "PYTHONPATH": str(TREE)}
    server = Proc(name, [PYTHON, "-m", "cli.main", "api"], environment, cwd=TREE)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/readyz")
    return server, url


def _jobpulse(name: str, data: Path, run: Callable[[Proc, str], Held], **env: str) -> Held:
    server, url = _start(name, data, **env)
    try:
        return run(server, url.replace("http", "ws") + "/graphql")
    finally:
        server.stop()


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def measure(sockets: int = SOCKETS, shared_sockets: int = SHARED_SOCKETS, **env: str) -> list[Row]:
    """7a, 7b, 7c (``env``: extra settings for the jobpulse servers, for experiments)."""
    with scratch_dir("fig7") as data:
        ids_file = write_ids(data, submit_jobs(data, max(sockets, shared_sockets * (1 + EXTRA_PER_SOCKET))))
        bare = _bare("fig7-bare", lambda s, u: hold_and_close(s, u, ids_file, "fig7-bare", True, sockets))
        ours = _jobpulse(
            "fig7-jobpulse",
            data,
            lambda s, u: hold_and_close(s, u, ids_file, "fig7-jobpulse", False, sockets),
            **env,
        )
        many = _jobpulse(
            "fig7b-jobpulse",
            data,
            lambda s, u: shared(s, u, ids_file, "fig7b-jobpulse", shared_sockets),
            **env,
        )
    per_ws, per_bare = ours.per(sockets), bare.per(sockets)
    extra_subs = shared_sockets * EXTRA_PER_SOCKET
    per_extra = many.per(extra_subs, top=many.extra, base=many.held)
    per_first = many.per(shared_sockets)
    back = ours.after / ours.start
    scale = f"{sockets:,}"
    return [
        Row(
            "7a",
            f"resident memory per idle websocket with one `jobUpdated` subscription, {scale} open",
            f"**{per_ws:.1f} KiB** each = **{per_ws / per_bare:.2f}×** the bare websocket; "
            f"RSS {_mib(ours.start)} → {_mib(ours.held)} MiB",
            f"bare Starlette websocket, same uvicorn: {per_bare:.1f} KiB each; "
            f"RSS {_mib(bare.start)} → {_mib(bare.held)} MiB",
            "≤ 1.25× the bare websocket",
            per_ws <= 1.25 * per_bare,
            "clients offer permessage-deflate (the servers decline it: their default); RSS read after a "
            "200-socket warm-up, then once steady",
        ),
        Row(
            "7b",
            "resident memory per extra subscription sharing a websocket "
            f"({shared_sockets:,} websockets, {EXTRA_PER_SOCKET} more `jobUpdated` on each)",
            f"**{per_extra:.1f} KiB** per extra subscription",
            f"the first subscription with its websocket: {per_first:.1f} KiB; "
            f"RSS {_mib(many.start)} → {_mib(many.held)} → {_mib(many.extra)} MiB",
            "≤ 8 KiB",
            per_extra <= 8,
            "a fresh server; every extra subscription's snapshot received before RSS is read",
        ),
        Row(
            "7c",
            f"resident memory {AFTER_CLOSE_SECONDS} s after the {scale} websockets of 7a closed",
            f"RSS {_mib(ours.start)} → {_mib(ours.held)} → **{_mib(ours.after)} MiB** = "
            f"**{back:.2f}×** the start",
            f"bare: RSS {_mib(bare.start)} → {_mib(bare.held)} → {_mib(bare.after)} MiB "
            f"({bare.after / bare.start:.2f}×)",
            "within 10% of the start",
            back <= 1.10,
            f"start: after the warm-up (fresh process: {_mib(ours.fresh)} MiB; bare {_mib(bare.fresh)} MiB)",
        ),
    ]


def figure7() -> list[Row]:
    return measure()


def main() -> None:
    from bench.procs import raise_nofile

    parser = argparse.ArgumentParser(prog="python -m bench.fig_memory", description=__doc__)
    parser.add_argument("--sockets", type=int, default=SOCKETS)
    parser.add_argument("--shared", type=int, default=SHARED_SOCKETS)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the jobpulse servers")
    parser.add_argument("--tree", type=Path, help="run the jobpulse servers from this checkout")
    args = parser.parse_args()
    global TREE
    TREE = args.tree
    raise_nofile()
    env = dict(item.split("=", 1) for item in args.env)
    print(table(measure(args.sockets, args.shared, **env)))


if __name__ == "__main__":
    main()
