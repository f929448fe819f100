"""Figure 5b: a progress UI per job (``jobUpdated(id)`` right after each submit) on ``jobpulse serve``.

``python -m bench.fig_progress [--rate 200] [--seconds 20] [--baseline REV] [--profile FILE]``

Prints the row(s); ``bench/run --only 5b`` puts the 200 and 500 jobs/s rows in the table. With
``--baseline REV``, the same load runs first against the code of ``REV`` (``git archive`` into
``bench/.data/``, the same virtualenv) and then against the working tree, and the ratios are
printed: before/after in one run. ``--profile`` records the server with py-spy (if installed).

Server CPU per 1,000 jobs (from ``/proc/<pid>/stat``, all threads) is the figure that survives a
loaded machine; latencies are marked "loaded" when the load average is above the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, REPO, CpuMeter, Proc, jobpulse, scratch_dir
from bench.report import Row, percentile, table

__all__ = ["figure5b", "measure"]

SECONDS = 20
WARMUP = 3
RATES = (200, 500)
#: seconds the client waits for the last jobs after its last submit (a server behind still finishes)
DRAIN = 120
PY_SPY = Path(PYTHON).parent / "py-spy"


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _baseline_tree(rev: str) -> Path:
    """The code of ``rev`` (``git archive``), to run with ``PYTHONPATH`` in front of the work tree."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = REPO / "bench" / ".data" / f"baseline-{commit}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def measure(
    rate: float, seconds: float = SECONDS, code: Path = REPO, profile: str | None = None
) -> dict[str, Any]:
    """One run of the load against a fresh ``jobpulse serve`` of ``code``; the client's JSON plus CPU."""
    name = f"fig5b-{int(rate)}" + ("" if code == REPO else "-baseline")
    with scratch_dir(name) as data:
        server, url = jobpulse("serve", name, data, PYTHONPATH=f"{code}{os.pathsep}{REPO}")
        spy = None
        try:
            client = Proc(
                f"{name}-client",
                [
                    *(PYTHON, "-m", "bench.progress_ui", "--url", url, "--rate", str(rate)),
                    *("--seconds", str(seconds), "--warmup", str(WARMUP), "--drain", str(DRAIN)),
                ],
                stdout=subprocess.PIPE,
            )
            # The server's CPU over the whole run (submits and drain) and every job submitted in it.
            meter = CpuMeter(server=server.pid, client=client.pid).start()
            load_before = _load()
            time.sleep(WARMUP)
            if profile and PY_SPY.exists():
                spy = subprocess.Popen(
                    [
                        *(str(PY_SPY), "record", "--pid", str(server.pid), "--threads", "--format", "raw"),
                        *("--rate", "200", "--duration", str(int(seconds - WARMUP - 1)), "-o", profile),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(Path(profile).with_suffix(".log")).open("wb"),
                )
            out, _ = client.popen.communicate(timeout=seconds + DRAIN + 120)
            cpu = meter.stop()
            wall = time.monotonic() - meter.started
            load = max(load_before, _load())
            if spy is not None:
                spy.wait(60)
        finally:
            server.stop()
        if client.popen.returncode != 0:
            raise RuntimeError(f"progress UI client failed:\n{client.output()}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result.update(
        cpu=cpu,
        load=load,
        cpu_ms_per_job=10 * cpu["server"] * wall / result["submitted"],  # % of a core → ms per job
    )
    return result


def _text(rate: float, r: dict[str, Any]) -> tuple[str, str, bool]:
    delays = r["delays_ms"]
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    loaded = " (loaded machine)" if r["load"] > (os.cpu_count() or 2) else ""
    growth = r["queue_wait_last_ms"] - r["queue_wait_first_ms"]
    measured = (
        f"**{r['cpu_ms_per_job'] * 1000:,.0f} ms of server CPU per 1,000 jobs** "
        f"(server {r['cpu']['server']:.0f}% of a core); p50 {p50:.1f} ms, p99 {p99:.1f} ms{loaded}, "
        f"max {max(delays, default=0):.0f} ms; {r['jobs']:,} jobs, {r['missing']} never seen COMPLETED"
    )
    notes = (
        f"queue wait {r['queue_wait_first_ms']:.1f} → {r['queue_wait_last_ms']:.1f} ms "
        "(first → last second); "
        f"achieved {r['rate']:.0f} submits/s, submit p50 {r['submit_p50_ms']:.1f} ms, "
        f"p99 {r['submit_p99_ms']:.1f} ms; client {r['cpu']['client']:.0f}%, machine "
        f"{r['cpu']['machine']:.0f}% of 200%, load average {r['load']:.1f}; stream problems "
        f"{r['problem_count']}, errors {r['error_count']}"
        + (f" (first: {r['errors'][0]})" if r["errors"] else "")
    )
    target = 15 if rate <= 200 else 50
    met = (
        p99 <= target
        and (rate > 200 or p50 <= 5)
        and r["missing"] == 0
        and r["problem_count"] == 0
        and growth < 100
    )
    return measured, notes, met


def figure5b() -> list[Row]:
    rows = []
    for rate in RATES:
        r = measure(rate)
        measured, notes, met = _text(rate, r)
        rows.append(
            Row(
                "5b",
                f"a progress UI per job: {rate} `data_analysis` jobs/s, each watched by its own "
                "`jobUpdated(id)` opened on its submit's answer (16 websockets), `jobpulse serve` defaults; "
                "submit answer → COMPLETED received",
                measured,
                "—",
                "p50 ≤ 5 ms, p99 ≤ 15 ms, no backlog" if rate <= 200 else "p99 ≤ 50 ms, no backlog",
                met,
                notes,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fig_progress", description=__doc__)
    parser.add_argument("--rate", type=float, action="append", default=[])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--baseline", help="a git revision to measure first, for before/after ratios")
    parser.add_argument("--profile", help="py-spy raw profile of the server (the baseline's beside it)")
    args = parser.parse_args()
    rows = []
    for rate in args.rate or [200]:
        before = None
        profile = args.profile and str(Path(args.profile).with_suffix(f".{rate:.0f}.txt"))
        if args.baseline:
            profile_before = profile and str(Path(profile).with_suffix(".baseline.txt"))
            before = measure(rate, args.seconds, _baseline_tree(args.baseline), profile_before)
        after = measure(rate, args.seconds, REPO, profile)
        measured, notes, met = _text(rate, after)
        baseline = "—"
        if before is not None:
            b_measured, _, _ = _text(rate, before)
            ratio = after["cpu_ms_per_job"] / before["cpu_ms_per_job"]
            baseline = f"{args.baseline}: {b_measured}; CPU per job after/before **{ratio:.2f}×**"
        what = f"{rate:.0f} jobs/s, one `jobUpdated` per job"
        rows.append(Row("5b", what, measured, baseline, "", met, notes))
        print(table(rows[-1:]), flush=True)  # each rate as soon as it is measured
    print(table(rows))


if __name__ == "__main__":
    main()
