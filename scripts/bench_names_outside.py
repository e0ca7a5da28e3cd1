#!/usr/bin/python3
"""`memprof-bpf names --pid` from outside against big_objs() in-process, on
one namespace: 1,000 globals and a 5,000,000-element list of floats
(scripts/bench_names.py --serve makes them a process's globals and times
big_objs() on them first). Prints a markdown table: wall time (median of
RUNS calls), the read and table split, the peak RSS of the reader and of
the table's python3, and the target's RSS before and after.

    /usr/bin/python3 scripts/bench_names_outside.py [RUNS]
"""
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AGENT = os.path.join(ROOT, "memprof-bpf")


def rss(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n):
    return "%.1f MiB" % (n / 1048576)


def one_call(pid):
    """Wall seconds of one names call, and its -v figures."""
    t = time.perf_counter()
    r = subprocess.run([AGENT, "names", "--pid", str(pid), "-n", "5", "-v"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    m = re.search(r"read ([\d.]+) s, table ([\d.]+) s; peak RSS: reader "
                  r"([\d.]+) MiB, table ([\d.]+) MiB", r.stderr)
    objects = re.search(r"(\d+) objects, (\d+) roots", r.stderr)
    return wall, [float(x) for x in m.groups()], objects.groups(), r.stdout


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    target = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(HERE, "bench_names.py"),
         "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    lines = []
    while not lines or lines[-1] != "ready":
        lines.append(target.stdout.readline().strip())
    inside = lines[0]
    try:
        before = rss(target.pid)
        calls = [one_call(target.pid) for _ in range(runs)]
        after = rss(target.pid)
    finally:
        target.stdin.close()
        target.wait()
    walls = [c[0] for c in calls]
    med = statistics.median(walls)
    figs = [c[1] for c in calls]
    objects, roots = calls[0][2]
    print("| | in-process `big_objs()` | `memprof-bpf names --pid` (outside) |")
    print("| --- | --- | --- |")
    m = re.match(r"in-process: median ([\d.]+) s of (\d+) \((.*)\)", inside)
    print("| wall time | median %s s of %s (%s) | median %.3f s of %d "
          "(%s) |" % (m.group(1), m.group(2), m.group(3), med, runs,
                      ", ".join("%.3f" % w for w in walls)))
    print("| of which | | reading the process %.3f s, the table (python3) "
          "%.3f s (medians) |"
          % (statistics.median(f[0] for f in figs),
             statistics.median(f[1] for f in figs)))
    print("| extra memory | in the kernel: see the big_objs section | "
          "none in the target (RSS %s before, %s after); peak RSS of the "
          "reader %.1f MiB, of the table's python3 %.1f MiB |"
          % (mib(before), mib(after), max(f[2] for f in figs),
             max(f[3] for f in figs)))
    print("| graph | | %s objects (the floats folded into their list), %s "
          "roots |" % (objects, roots))
    print()
    print("```")
    print(calls[0][3].rstrip())
    print("```")


if __name__ == "__main__":
    main()
