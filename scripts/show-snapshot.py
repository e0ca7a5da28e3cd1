#!/usr/bin/env python3
"""Print a snapshot's peak breakdown as a short table (demo helper; the
full review command arrives with `memprof-bpf report`)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from memprof_bpf.snapshot import load  # noqa: E402


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def where(frames):
    """The innermost Python frame when there is one, else the native site."""
    py = [f for f in frames if not f["native"] and f.get("file")]
    if py:
        f = py[-1]
        return f"{f['file'].rsplit('/', 1)[-1]}:{f['line']} {f['function']}"
    frame = frames[-1]
    fn = frame.get("function") or "?"
    mod = (frame.get("module") or "?").rsplit("/", 1)[-1]
    return f"{fn} ({mod}+{frame.get('offset', 0)})"


def main(path, top=8):
    snap = load(path)
    peak = snap["peak"]
    print(f"{snap['comm']} (pid {snap['pid']}): peak {human(peak['bytes'])} "
          f"in {peak['count']} blocks at {peak['at']}; "
          f"dropped events: {snap['dropped_events']}")
    cells = any(st.get("cell") for st in peak["stacks"])
    print(f"{'BYTES':>12} {'BLOCKS':>8}  " + ("CELL      " if cells else "")
          + "ALLOCATED BY")
    for st in peak["stacks"][:top]:
        cell = f"{st.get('cell') or '-':<9.9} " if cells else ""
        print(f"{human(st['bytes']):>12} {st['count']:>8}  {cell}"
              f"{where(st['frames'])}")


if __name__ == "__main__":
    main(sys.argv[1])
