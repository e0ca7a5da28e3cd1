"""The census at attach on a big heap (scripts/bench-census): build/bench/
bigheap builds N chunks totalling G GiB in the main arena (every 7th
freed), then the agent attaches with --pid, -v and --duration, with and
without --no-census. Measured per run:

- the census's own time: the snapshot's census.took_ms (and the -v line
  "pid N: census: ... in X ms");
- attach: from starting the agent to its "tracing pid N" line (probes in);
- merged: from starting the agent to the census line;
- the target's pause: the agent does not stop the target, so 0 by
  construction. What the census costs the target is measured instead:
  bigheap -c keeps replacing random blocks in a loop and reports its
  longest gap between two iterations while the agent ran, untraced, with
  --no-census and with the census.

Prints Markdown table rows (medians of REPS runs) on stdout."""
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from memprof_bpf.snapshot import load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "memprof-bpf")
BIGHEAP = os.path.join(ROOT, "build", "bench", "bigheap")
COPYFLOOR = os.path.join(ROOT, "build", "bench", "copyfloor")
N = int(os.environ.get("N", "10000000"))
G = float(os.environ.get("G", "10"))
REPS = int(os.environ.get("REPS", "3"))
DURATION = float(os.environ.get("DURATION", "6"))


def log(msg):
    print("bench-census: " + msg, file=sys.stderr, flush=True)


def start_bigheap(churn):
    p = subprocess.Popen([BIGHEAP, "-n", str(N), "-g", str(G)] +
                         (["-c"] if churn else []), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "ready", line
    p.live, p.requested, p.usable = int(line[2]), int(line[3]), int(line[4])
    return p


def stall(p):
    """bigheap -c's longest gap (ms) since the last ask, and iterations."""
    p.stdin.write("stall\n")
    p.stdin.flush()
    f = p.stdout.readline().split()
    assert f and f[0] == "stall", f
    return int(f[1]) / 1e6, int(f[2])


def run_agent(pid, *extra):
    """One agent run; a dict of what it showed."""
    tmp = tempfile.mkdtemp(prefix="memprof-bench-census-")
    t0 = time.monotonic()
    a = subprocess.Popen([AGENT, "--batch", "-v", "-i", "1", "-d",
                          str(DURATION), "-D", tmp, "--pid", str(pid)] +
                         list(extra), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    r = {"attach": None, "merged": None, "line_ms": None}

    def read():
        for line in a.stderr:
            now = time.monotonic() - t0
            if r["attach"] is None and "tracing pid %d" % pid in line:
                r["attach"] = now
            m = re.search(r"pid %d\b.*: census: .* in ([0-9.]+) ms" % pid,
                          line)
            if m:
                r["merged"], r["line_ms"] = now, float(m.group(1))
            if "warning" in line:
                log(line.strip())
    t = threading.Thread(target=read)
    t.start()
    code = a.wait(DURATION + 120)
    t.join()
    assert code == 0, code
    end, = glob.glob(os.path.join(tmp, "memprof-*-%d-end.json.gz" % pid))
    doc = load(end)
    r["census"] = doc.get("census")
    r["live"] = doc["current"]["bytes"]
    subprocess.run(["rm", "-rf", tmp])
    return r


def copy_floor(pid):
    """Seconds to copy the target's [heap] out, and nothing else: the
    census's floor, measured just before each census run."""
    out = subprocess.run([COPYFLOOR, str(pid)], capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[1])


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit="s", scale=1.0, digits=2):
    return "n/a" if x is None else "%.*f %s" % (digits, x * scale, unit)


def main():
    rows = []
    log("bigheap -n %d -g %g: building" % (N, G))
    t0 = time.monotonic()
    p = start_bigheap(False)
    log("built in %.1f s: %d live chunks, %.2f GiB usable"
        % (time.monotonic() - t0, p.live, p.usable / 2**30))
    try:
        for case, extra in (("census", ()), ("--no-census", ("--no-census",))):
            runs = []
            for i in range(REPS):
                floor = copy_floor(p.pid) if case == "census" else None
                r = run_agent(p.pid, *extra)
                r["floor"] = floor
                c = r["census"] or {}
                log("%s run %d: copy floor %s, attach %s, merged %s, took_ms "
                    "%s, blocks %s, live %.2f GiB"
                    % (case, i + 1, floor, r["attach"], r["merged"],
                       c.get("took_ms"), c.get("blocks"), r["live"] / 2**30))
                runs.append(r)
            cs = [r["census"] or {} for r in runs]
            took = med([c.get("took_ms") for c in cs])
            blocks = med([c.get("blocks") for c in cs])
            live = med([r["live"] for r in runs])
            floor = med([r["floor"] for r in runs])
            ratio = med([(r["census"] or {}).get("took_ms", 0) / 1e3 /
                         r["floor"] for r in runs if r["floor"]])
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                case, fmt(med([r["attach"] for r in runs])),
                fmt(med([r["merged"] for r in runs])),
                fmt(took, "s", 1e-3),
                "n/a" if floor is None else "%s (%.2fx)" % (fmt(floor),
                                                           ratio),
                "n/a" if blocks is None else "{:,}".format(int(blocks)),
                fmt(live, "GiB", 2**-30),
                "0 (not paused)" if case == "census" else "0"))
    finally:
        p.kill()
        p.wait()

    log("bigheap -c: churning while the agent attaches")
    q = start_bigheap(True)
    stalls = []
    try:
        time.sleep(3)  # past the first mallocs' sorting of the free bins
        for case, extra in (("untraced", None), ("--no-census",
                                                 ("--no-census",)),
                            ("census", ())):
            for i in range(REPS):
                stall(q)
                t0 = time.monotonic()
                if extra is None:
                    time.sleep(DURATION)
                    r = None
                else:
                    r = run_agent(q.pid, *extra)
                gap, its = stall(q)
                its /= time.monotonic() - t0
                log("%s run %d: longest stall %.2f ms, %.0f iterations/s%s"
                    % (case, i + 1, gap, its, "" if r is None else
                       ", census %r" % (r["census"],)))
                stalls.append((case, gap, its,
                               r and (r["census"] or {}).get("took_ms")))
    finally:
        q.kill()
        q.wait()
    srows = []
    for case in ("untraced", "--no-census", "census"):
        mine = [s for s in stalls if s[0] == case]
        srows.append("| %s | %s | %s | %s |" % (
            case, fmt(med([s[1] for s in mine]), "ms", 1, 1),
            "{:,.0f}".format(med([s[2] for s in mine])),
            fmt(med([s[3] for s in mine]), "s", 1e-3)))
    print("\n".join(rows))
    print("@@")
    print("\n".join(srows))


if __name__ == "__main__":
    main()
