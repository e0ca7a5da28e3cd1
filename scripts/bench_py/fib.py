"""Workload (c) of scripts/bench: call-heavy pure Python, recursive fib.

Almost no allocation (frames live in CPython's own frame stack): this
shows what a profiler costs a program that calls a lot and allocates
little. Timed section: fib(N) REPEAT times (defaults N=29, REPEAT=60).
"""
import sys

import benchlib

N = int(sys.argv[1]) if len(sys.argv) > 1 else 29
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 60


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def work():
    total = 0
    for _ in range(REPEAT):
        total += fib(N)
    return total


benchlib.run(work, warmup=lambda: fib(20))
