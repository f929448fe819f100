"""``python -m bench [--only 4] [--only 6,7] [--write]``: measure the figures, print the table.

``--write`` replaces the table in ``bench/README.md`` (between its BEGIN/END TABLE markers).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import structlog

from bench.procs import AWS_TEST_ENV, machine_busy_seconds, quiet_machine, raise_nofile
from bench.report import Row, machine, table

README = Path(__file__).with_name("README.md")
#: % of one core used by processes that are not ours during a figure, above which it is measured again
DISTURBED = 25.0
ATTEMPTS = 2
#: figures that measure memory, not speed: other load does not change them
NOT_CPU_BOUND = frozenset({"7"})
BEGIN, END = "<!-- BEGIN TABLE -->", "<!-- END TABLE -->"


#: figure number → module of bench that measures it (imported only when that figure runs)
FIGURES = {
    "1": "fig_http",
    "2": "fig_http",
    "3": "fig_http",
    "4": "fig_worker",
    "5": "fig_worker",
    "5b": "fig_progress",
    "6": "fig_subs",
    "7": "fig_memory",
    "8": "fig_http",
    "9": "fig_distributed",
    "12": "flows",
    "16": "fig_rest",
}


def _figure(number: str) -> Callable[[], list[Row]]:
    module = importlib.import_module(f"bench.{FIGURES[number]}")
    return getattr(module, f"figure{number}")  # type: ignore[no-any-return]


class OtherLoad:
    """CPU the machine spent on processes outside this run (not this one nor its descendants).

    Every process a figure starts is reaped before it returns, so this process's rusage of
    itself and of its children covers all of ours; the rest of the machine's busy time is others'.
    """

    def __enter__(self) -> OtherLoad:
        self.started = time.monotonic()
        self.machine = machine_busy_seconds()
        self.ours = self._ours()
        self.percent = 0.0
        return self

    @staticmethod
    def _ours() -> float:
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.started
        others = (machine_busy_seconds() - self.machine) - (self._ours() - self.ours)
        self.percent = max(0.0, 100 * others / wall)


def _measure(number: str) -> list[Row]:
    """One figure's rows; measured again (once) when other processes took a share of the machine."""
    kept: tuple[float, list[Row]] | None = None
    for attempt in range(1, ATTEMPTS + 1):
        print(f"== figure {number} (attempt {attempt}) ...", file=sys.stderr, flush=True)
        busy = quiet_machine(max_wait=120 if attempt == 1 else 300)
        if busy >= 15:
            print(f"   the machine is {busy:.0f}% busy with other work; measuring anyway", file=sys.stderr)
        started = time.monotonic()
        with OtherLoad() as other:
            try:
                rows = _figure(number)()
            except Exception as exc:
                traceback.print_exc()
                rows = [
                    Row(number, "(failed to run)", f"error: {exc}".replace("\n", " ")[:300], "", "", False)
                ]
        for row in rows:
            row.notes += f"; other processes: {other.percent:.0f}%"
        print(f"   {time.monotonic() - started:.0f}s, other load {other.percent:.0f}%", file=sys.stderr)
        print(table(rows), file=sys.stderr, flush=True)
        if kept is None or other.percent < kept[0]:
            kept = (other.percent, rows)  # of two disturbed attempts, the less disturbed one
        if other.percent < DISTURBED or number in NOT_CPU_BOUND:
            break
        if attempt < ATTEMPTS:
            print(f"   disturbed by {other.percent:.0f}% of other load; measuring again", file=sys.stderr)
    assert kept is not None
    return kept[1]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="figure numbers, e.g. 4 or 6,7")
    parser.add_argument("--write", action="store_true", help="put the table in bench/README.md")
    args = parser.parse_args()
    if args.write and args.only:
        parser.error("--write replaces the whole table: run every figure (no --only)")
    os.environ.update(AWS_TEST_ENV)
    raise_nofile()
    # Seeding runs jobpulse's own code in this process: keep its info lines out of the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    wanted = [f.strip() for item in args.only for f in item.split(",") if f.strip()] or list(FIGURES)
    unknown = [f for f in wanted if f not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    rows: list[Row] = []
    started = time.monotonic()
    for number in wanted:
        rows += _measure(number)
    text = f"Machine: {machine()}. Whole run: {time.monotonic() - started:.0f}s.\n\n{table(rows)}\n"
    print(text)
    if args.write:
        readme = README.read_text()
        head, _, rest = readme.partition(BEGIN)
        _, _, tail = rest.partition(END)
        README.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


if __name__ == "__main__":
    main()
