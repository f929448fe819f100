"""Where a server's memory goes: ``jobpulse`` run under ``tracemalloc``, dumped on a signal.

``JOBPULSE_MEMTRACE_DIR=DIR python -m bench.memtrace api`` runs ``jobpulse api`` with
``tracemalloc`` on (16 frames). On ``SIGUSR1`` it writes ``DIR/snap-N.pickle`` (a tracemalloc
snapshot) and ``DIR/types-N.json`` (live objects per type, after a full collection), N counting
from 1. ``python -m bench.memtrace --diff DIR A B`` prints what grew between dumps A and B, by
line, by traceback and by type, divided by ``--per`` (e.g. the websockets opened in between).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

FRAMES = 16


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2]


def allocator_stats() -> dict[str, int]:
    """pymalloc's arenas (from ``sys._debugmallocstats``) and glibc's heap (``mallinfo2``), in KiB."""
    stats: dict[str, int] = {}
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    for line in text.splitlines():
        label, _, value = line.rpartition("=")
        value = value.strip().replace(",", "")
        if label.startswith("# arenas allocated current"):
            stats["pymalloc_arenas"] = int(value)
        elif label.startswith("# bytes in allocated blocks"):
            stats["pymalloc_used_kib"] = int(value) // 1024
        elif label.startswith("# bytes in available blocks"):
            stats["pymalloc_free_in_pools_kib"] = int(value) // 1024
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        stats.update(
            malloc_heap_kib=info.arena // 1024,
            malloc_mmapped_kib=info.hblkhd // 1024,
            malloc_used_kib=info.uordblks // 1024,
            malloc_free_kib=info.fordblks // 1024,
            malloc_top_releasable_kib=info.keepcost // 1024,
        )
    return stats


def _where() -> dict[int, dict[str, object]]:
    """Live objects (gc-tracked, and the strings, bytes and numbers they refer to) per MiB of
    address space: types counted, a few strings kept. Regions that appear after a burst of
    connections and stay after it show what pins pymalloc's 1 MiB arenas."""
    seen: set[int] = set()
    regions: dict[int, dict[str, object]] = {}

    def note(o: object) -> None:
        if id(o) in seen:
            return
        seen.add(id(o))
        region = regions.setdefault(id(o) >> 20, {"types": Counter(), "samples": []})
        types = region["types"]
        assert isinstance(types, Counter)
        types[f"{type(o).__module__}.{type(o).__qualname__}"] += 1
        samples = region["samples"]
        assert isinstance(samples, list)
        if isinstance(o, str | bytes) and len(samples) < 8:
            samples.append(repr(o)[:80])

    for o in gc.get_objects():
        note(o)
        for r in gc.get_referents(o):
            if isinstance(r, str | bytes | int | float):
                note(r)
    return regions


def _dump(directory: Path, number: int) -> None:
    gc.collect()
    types: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for o in gc.get_objects():
        name = f"{type(o).__module__}.{type(o).__qualname__}"
        types[name] += 1
        sizes[name] += sys.getsizeof(o)
    (directory / f"types-{number}.json").write_text(json.dumps({"count": types, "bytes": sizes}))
    (directory / f"alloc-{number}.json").write_text(json.dumps(allocator_stats()))
    (directory / f"where-{number}.json").write_text(json.dumps(_where()))
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(directory / f"snap-{number}.pickle"))
    (directory / f"done-{number}").touch()


def run(argv: list[str]) -> None:
    directory = Path(os.environ["JOBPULSE_MEMTRACE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    dumps = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal dumps
        dumps += 1
        _dump(directory, dumps)

    signal.signal(signal.SIGUSR1, on_signal)
    # Imports first: under tracemalloc they take minutes, and their memory is not the question.
    import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401

    import api.app  # noqa: F401
    from cli.main import main

    frames = int(os.environ.get("JOBPULSE_MEMTRACE_FRAMES", FRAMES))
    if frames:
        tracemalloc.start(frames)

    sys.argv = ["jobpulse", *argv]
    main()


def diff(directory: Path, a: int, b: int, per: int, top: int) -> None:
    _diff_alloc(directory, [a, b])
    if (directory / f"where-{a}.json").exists():
        _new_regions(directory, a, b, top)
    if (directory / f"snap-{a}.pickle").exists():
        _diff_traces(directory, a, b, per, top)
    old_types = json.loads((directory / f"types-{a}.json").read_text())
    new_types = json.loads((directory / f"types-{b}.json").read_text())
    old_count, new_count = Counter(old_types["count"]), Counter(new_types["count"])
    new_bytes = Counter(new_types["bytes"])
    old_bytes = Counter(old_types["bytes"])
    grown = Counter({k: new_bytes[k] - old_bytes.get(k, 0) for k in new_bytes})
    total = sum(grown.values())
    print(f"\n== gc-tracked objects per unit, by type (sys.getsizeof, shallow): {total / per:.0f} B in all")
    for name, size in grown.most_common(top):
        count = new_count[name] - old_count.get(name, 0)
        print(f"{size / per:8.0f} B {count / per:7.2f} {name}")


def _new_regions(directory: Path, a: int, b: int, top: int) -> None:
    old = json.loads((directory / f"where-{a}.json").read_text())
    new = json.loads((directory / f"where-{b}.json").read_text())
    fresh = {k: v for k, v in new.items() if k not in old}
    types: Counter[str] = Counter()
    for region in fresh.values():
        types.update(region["types"])
    print(f"\n== MiB regions holding objects at {b} and none at {a}: {len(fresh)}; their objects by type")
    for name, count in types.most_common(top):
        print(f"{count:8d} {name}")
    for key in list(fresh)[:6]:
        print(
            f"  region {key}: {dict(Counter(fresh[key]['types']).most_common(6))} {fresh[key]['samples'][:4]}"
        )


def _diff_alloc(directory: Path, numbers: list[int]) -> None:
    for n in numbers:
        path = directory / f"alloc-{n}.json"
        if path.exists():
            print(f"allocators at dump {n}: {json.loads(path.read_text())}")


def _diff_traces(directory: Path, a: int, b: int, per: int, top: int) -> None:
    old = tracemalloc.Snapshot.load(str(directory / f"snap-{a}.pickle"))
    new = tracemalloc.Snapshot.load(str(directory / f"snap-{b}.pickle"))
    for group, frames in (("lineno", 1), ("traceback", FRAMES)):
        stats = new.compare_to(old, group)
        total = sum(s.size_diff for s in stats)
        print(f"\n== by {group}: {total / per / 1024:.2f} KiB per unit traced in all")
        for stat in stats[:top]:
            print(f"{stat.size_diff / per:9.0f} B {stat.count_diff / per:7.2f} blocks")
            for line in (
                stat.traceback.format()[-2 * frames :]
                if group == "traceback"
                else stat.traceback.format()[:2]
            ):
                print("      " + line)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--diff":
        parser = argparse.ArgumentParser(prog="python -m bench.memtrace --diff")
        parser.add_argument("directory", type=Path)
        parser.add_argument("a", type=int)
        parser.add_argument("b", type=int)
        parser.add_argument("--per", type=int, default=1)
        parser.add_argument("--top", type=int, default=25)
        args = parser.parse_args(sys.argv[2:])
        diff(args.directory, args.a, args.b, args.per, args.top)
        return
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
