"""Summarise a py-spy profile in "raw" (collapsed stacks) format: where the samples are.

``python -m bench.stacks PROFILE.txt [--top 25] [--match api/ --match core/]``

Prints the functions with the most samples on top of the stack (self), and the most samples
anywhere in the stack (inclusive), as % of all samples of the profile. With ``--thread``, only
stacks of threads whose name contains that text (py-spy ``--threads`` puts it first).

Record one with e.g. ``py-spy record --pid PID --format raw --rate 250 --duration 10 -o p.txt``
(add ``--threads`` to tell the event loop from SQLite's threads, ``--idle`` to count waiting).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_LINE = re.compile(r"^(.*) (\d+)$")


def frames(stack: str) -> list[str]:
    # "func (file.py:12)" → "func (file.py)": lines of one function count together.
    return [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", action="append", default=[], help="only frames containing this")
    parser.add_argument("--thread", help="only stacks whose first frame contains this")
    args = parser.parse_args()
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in open(args.profile):
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        stack, count = frames(m.group(1)), int(m.group(2))
        if args.thread and args.thread not in stack[0]:
            continue
        total += count
        own[stack[-1]] += count
        for frame in set(stack):
            anywhere[frame] += count

    def keep(frame: str) -> bool:
        return not args.match or any(text in frame for text in args.match)

    print(f"{total} samples")
    for title, counter in (("self", own), ("inclusive", anywhere)):
        print(f"\n-- {title} --")
        shown = 0
        for frame, count in counter.most_common():
            if keep(frame):
                print(f"{100 * count / total:5.1f}%  {frame}")
                shown += 1
                if shown >= args.top:
                    break


if __name__ == "__main__":
    main()
