"""Shared harness of the Python workloads run by scripts/bench.

A workload calls run(work, warmup): warm-up first (imports are already
done), then, if BENCH_WAIT_FILE is set, it prints "waiting" and polls for
that file (a tracer that attaches by pid, bcc memleak, gets its probes in
meanwhile), then times work() alone with time.perf_counter and prints one
line:  elapsed=S [calls=N frees=M] result=R
If BENCH_DONE_FILE is set, it then polls for that file before returning,
so a reader of the tracer's counters (scripts/bench-pywalk) can take them
over the timed section alone, before the interpreter's teardown.

calls/frees come only when the process runs with scripts/bench_py/
alloccount.c preloaded (BENCH_COUNT=1): they are the malloc-family calls
and frees made inside the timed section, read from the counter through
ctypes just before and just after it.
"""
import os
import sys
import time


def _counter():
    if not os.environ.get("BENCH_COUNT"):
        return None
    import ctypes

    lib = ctypes.CDLL(None)
    try:
        calls, frees = lib.alloccount_calls, lib.alloccount_frees
    except AttributeError:
        print("benchlib: BENCH_COUNT set but alloccount.so is not preloaded",
              file=sys.stderr)
        return None
    calls.restype = frees.restype = ctypes.c_ulonglong
    return lambda: (calls(), frees())


def _wait(var="BENCH_WAIT_FILE", say="waiting"):
    path = os.environ.get(var)
    if not path:
        return
    if say:
        print(say, flush=True)
    while not os.path.exists(path):
        time.sleep(0.01)


def run(work, warmup=None):
    if warmup is not None:
        warmup()
    counter = _counter()
    _wait()
    c0 = counter() if counter else None
    t0 = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - t0
    c1 = counter() if counter else None
    line = "elapsed=%.4f" % elapsed
    if c0 is not None:
        line += " calls=%d frees=%d" % (c1[0] - c0[0], c1[1] - c0[1])
    print(line + " result=%s" % (result,), flush=True)
    _wait("BENCH_DONE_FILE", None)
