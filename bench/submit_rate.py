"""Submit throughput with ``JOBPULSE_RATE_LIMIT`` set but never reached, against unset (issue 14).

    .venv/bin/python -m bench.submit_rate             # both rows, printed
    .venv/bin/python -m bench.submit_rate --seconds 5 # shorter runs

`jobpulse api` on the embedded store, `submitJob` (noop) from ``bench/httpload.py`` at 64
connections, 2 s warm-up, then ``--seconds`` measured; the limit is 10,000,000 per second, so
every submit takes a count and none is refused (each answer is checked for PENDING). Runs
alternate unset / set, ``--rounds`` times each, and the medians are compared. Row a: the limit
counted in memory (one process). Row b: counted in Redis (a local ``redis-server``, which also
carries the events in both runs, so only the limiter differs). Target: ≥ 0.9× of unset.
The machine is shared: the figures are indicative.
"""

from __future__ import annotations

import argparse
import statistics

from bench.fig_http import SUBMIT, _exact
from bench.procs import jobpulse, scratch_dir
from tests.support.servers import RedisServer

LIMIT = "10000000/1s"
CONNECTIONS = 64


def _rate(name: str, seconds: float, **env: str) -> float:
    """Jobs/s of one ``submitJob`` run against a fresh ``jobpulse api``."""
    with scratch_dir(name) as data:
        server, url = jobpulse("api", name, data, **env)
        try:
            marker = '"status":"PENDING"'
            result = _exact(f"{url}/graphql", SUBMIT, server.pid, CONNECTIONS, seconds=seconds, marker=marker)
        finally:
            server.stop()
    return result.rate


def compare(label: str, rounds: int, seconds: float, **env: str) -> tuple[float, float]:
    """Median jobs/s without and with the limit, runs alternating."""
    unset: list[float] = []
    limited: list[float] = []
    for n in range(rounds):
        unset.append(_rate(f"rate-{label}-unset-{n}", seconds, **env))
        limited.append(_rate(f"rate-{label}-set-{n}", seconds, JOBPULSE_RATE_LIMIT=LIMIT, **env))
    return statistics.median(unset), statistics.median(limited)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = [("a", "memory", compare("memory", args.rounds, args.seconds))]
    redis = RedisServer()
    redis.start()
    try:
        redis_env = {"JOBPULSE_REDIS_URL": redis.url}
        rows.append(("b", "Redis", compare("redis", args.rounds, args.seconds, **redis_env)))
    finally:
        redis.close()
    print("| row | limit counted in | unset (jobs/s) | set, not reached (jobs/s) | ratio | target ≥ 0.9× |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row, where, (unset, limited) in rows:
        ratio = limited / unset
        met = "yes" if ratio >= 0.9 else "no"
        print(f"| 14{row} | {where} | {unset:,.0f} | {limited:,.0f} | **{ratio:.2f}×** | {met} |")


if __name__ == "__main__":
    main()
