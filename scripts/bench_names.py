#!/usr/bin/python3
"""Cost of big_objs() on a big namespace: 1,000 globals and a 5,000,000-element
list of floats, in a plain dict (no kernel, no agent).

    /usr/bin/python3 scripts/bench_names.py [--elements N] [--globals N]

Prints the median time of 3 calls, the peak extra memory during a call
(tracemalloc's peak above the traced memory before it, measured in a
separate run because tracing slows the walk down) and the RSS before and
after, to show that nothing is kept.
"""
import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

from memprof_bpf.names import big_objs  # noqa: E402
from memprof_bpf.table import human  # noqa: E402


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def namespace(elements, n_globals):
    """The big list, then a mix of ordinary globals: numbers, strings,
    small lists and dicts, a few arrays if numpy is there."""
    ns = {"big": [float(i) for i in range(elements)]}
    for i in range(n_globals - 1):
        r = i % 5
        if r == 0:
            ns["x%d" % i] = i * 1.5
        elif r == 1:
            ns["s%d" % i] = "value %d" % i * 4
        elif r == 2:
            ns["l%d" % i] = [j * 0.5 for j in range(100)]
        elif r == 3:
            ns["d%d" % i] = {"k%d" % j: j for j in range(20)}
        else:
            ns["t%d" % i] = tuple(str(j) for j in range(30))
    return ns


def serve(ns, runs):
    """The namespace as __main__'s globals (what `names` reads from
    outside); big_objs() timed on them in here first, for comparison."""
    g = globals()
    g.update(ns)
    ns.clear()  # the caller's argument still names the dict
    gc.collect()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = big_objs(n=5, ns=g, _lookup=False)
        times.append(time.perf_counter() - t)
    print("in-process: median %.3f s of %d (%s), %d names"
          % (statistics.median(times), len(times),
             ", ".join("%.3f" % t for t in times), result.names))
    print("rss: %d" % rss())
    print("ready", flush=True)
    sys.stdin.read()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--elements", type=int, default=5_000_000)
    p.add_argument("--globals", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--agent", action="store_true",
                   help="ask the memprof-bpf agent tracing this process "
                   "(run under `memprof-bpf -- ...`) as a kernel would")
    p.add_argument("--serve", action="store_true",
                   help="make the namespace this script's globals, time "
                   "big_objs() on them, print 'ready' and wait for stdin "
                   "to close (for `memprof-bpf names --pid`)")
    args = p.parse_args()

    if args.serve:  # no local here may hold the namespace's objects
        serve(namespace(args.elements, args.globals), args.runs)
        return
    ns = namespace(args.elements, args.globals)
    gc.collect()
    rss0 = rss()
    times = []
    result = None
    for _ in range(args.runs):
        t = time.perf_counter()
        result = big_objs(n=5, ns=ns, _lookup=None if args.agent else False)
        times.append(time.perf_counter() - t)
    gc.collect()
    rss1 = rss()
    print(result)
    print()
    print("names: %d, objects walked: %d, complete: %s, agent: %s"
          % (result.names, result.nodes, result.complete,
             not result.estimated))
    print("time: median %.3f s of %d (%s)" % (
        statistics.median(times), len(times),
        ", ".join("%.3f" % t for t in times)))

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    # Tracing makes the walk several times slower: a budget it will not
    # hit, so that the peak is that of a complete walk.
    traced = big_objs(n=5, ns=ns, budget=120, _lookup=False)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    data = sum(r.bytes for r in traced if r.name == "big")
    print("peak extra memory during a call (tracemalloc, %.2f s traced, "
          "complete: %s): %s (the list and its floats: %s)"
          % (traced.elapsed, traced.complete, human(peak - base),
             human(data)))
    print("RSS before the calls %s, after %s (%+d KiB)"
          % (human(rss0), human(rss1), (rss1 - rss0) // 1024))


if __name__ == "__main__":
    main()
