"""The BPF Python frame walk's cost per allocation (scripts/bench-pywalk).

The same pure-Python workload, scripts/bench_py/churn.py (ROUNDS bytes and
bytearray objects of 600 B to 64 KiB replacing one another: one malloc or
calloc and one free each), runs under the agent (-- CMD, -v) on Debian's
/usr/bin/python3.11 and on python3.14 and python3.15 in the sid root
(chroot ROOT pythonX.Y), each with the default --py-depth and with
--py-depth 1 (the innermost frame only: what a walk costs before its
frames). The floor without any walk is build/bench/mallocbench -p -e
ROUNDS, a C program under the same agent: the agent has no way to turn
Python stacks off for a Python process, and for a process that is not
Python py_stack() stops at its first map lookup.

Needs kernel.bpf_stats_enabled=1 (the caller sets it). The workloads stop
just before and just after their timed section (benchlib.py's
BENCH_WAIT_FILE and BENCH_DONE_FILE, mallocbench's SIGUSR1 pauses); at
each stop the agent's programs' run_time_ns and run_cnt (bpftool prog
show) and its .bss counters (bpftool map dump) are read, so the figures
are the differences over the timed section alone: no interpreter start-up,
imports, warm-up or teardown, no probe attach. The agent's programs are
the ones whose ids its /proc/PID/fdinfo holds (this bpftool shows no
"pids").

Prints one line of JSON a run on stdout (the raw figures) and then, after
"@@", Markdown table rows (medians of REPS runs, interleaved: run 1 of
every case, then run 2...)."""
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "memprof-bpf")
MALLOCBENCH = os.path.join(ROOT, "build", "bench", "mallocbench")
BENCH_PY = os.path.join(ROOT, "scripts", "bench_py")
SID = os.environ.get("SID", "/var/cache/memprof-bpf/sid")
ROUNDS = int(os.environ.get("ROUNDS", "200000"))
REPS = int(os.environ.get("REPS", "5"))
PYTHONS = os.environ.get("PYTHONS", "3.11 3.13 3.14 3.15").split()
HOST_PY = "/usr/bin/python3.11"
# Interpreters on the host (not chrooted): Debian's, and pyenv's 3.13.
HOST_PYTHONS = {"3.11": HOST_PY,
                "3.13": "/root/.pyenv/versions/3.13.0/bin/python3"}


def interpreter(py):
    """The command that runs python `py`, and whether it is chrooted."""
    if py in HOST_PYTHONS:
        return [HOST_PYTHONS[py]], False
    return ["chroot", SID, "python" + py], True

# Programs that start an outermost allocator call: each calls py_stack().
ENTRIES = {"malloc_enter", "calloc_enter", "memalign_enter", "valloc_enter",
           "pvalloc_enter", "posix_memalign_enter", "realloc_enter",
           "reallocarray_enter", "pymalloc_malloc_enter",
           "pymalloc_calloc_enter", "pymalloc_realloc_enter", "mmap_enter",
           "mremap_enter"}


def log(msg):
    print("bench-pywalk: " + msg, file=sys.stderr, flush=True)


# ---- readings ----------------------------------------------------------------

def agent_ids(pid):
    """The BPF program and map ids the agent holds open."""
    progs, maps = set(), set()
    for f in glob.glob("/proc/%d/fdinfo/*" % pid):
        try:
            text = open(f).read()
        except OSError:
            continue
        m = re.search(r"^prog_id:\s+(\d+)", text, re.M)
        if m:
            progs.add(int(m.group(1)))
        m = re.search(r"^map_id:\s+(\d+)", text, re.M)
        if m:
            maps.add(int(m.group(1)))
    return progs, maps


def bpftool(*args):
    out = subprocess.run(["bpftool", "--json"] + list(args), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def find_key(obj, key):
    """The first dict in a JSON tree holding key (the .bss stats)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            r = find_key(v, key)
            if r is not None:
                return r
    return None


def reading(pid):
    """{prog name: [run_time_ns, run_cnt]} and the .bss stats, now."""
    progs, maps = agent_ids(pid)
    r = {"progs": {}, "stats": None}
    for p in bpftool("prog", "show"):
        if p["id"] in progs:
            t = r["progs"].setdefault(p["name"], [0, 0])
            t[0] += p.get("run_time_ns", 0)
            t[1] += p.get("run_cnt", 0)
    for m in bpftool("map", "show"):
        if m["id"] in maps and m.get("name", "").endswith(".bss"):
            r["stats"] = find_key(bpftool("map", "dump", "id", str(m["id"])),
                                  "py_walks")
    return r


def delta(r0, r1):
    """Per-program [ns, calls] and stats over the window r0..r1."""
    progs = {}
    for name, (ns, cnt) in r1["progs"].items():
        b = r0["progs"].get(name, [0, 0])
        if cnt - b[1]:
            progs[name] = [ns - b[0], cnt - b[1]]
    stats = None
    if r0["stats"] and r1["stats"]:
        stats = {k: r1["stats"][k] - r0["stats"].get(k, 0)
                 for k in r1["stats"] if isinstance(r1["stats"][k], int)}
    return progs, stats


# ---- one run -----------------------------------------------------------------

def py_frames(snap):
    """Python frames per stack in the snapshot's peak, weighted by blocks."""
    try:
        stacks = json.load(open(snap))["peak"]["stacks"]
    except (OSError, ValueError, KeyError):
        return None
    n = sum(s["count"] for s in stacks)
    if not n:
        return None
    return sum(s["count"] * sum(not f.get("native") for f in s["frames"])
               for s in stacks) / n


def run_case(case, tmp):
    """One run of a case: the window's figures as a dict."""
    go, done = os.path.join(tmp, "go"), os.path.join(tmp, "done")
    for f in (go, done):
        if os.path.exists(f):
            os.unlink(f)
    # The same files, seen from inside the root by a chrooted interpreter.
    chrooted = case["kind"] == "py" and interpreter(case["py"])[1]
    inner = tmp[len(SID):] if chrooted else tmp
    env = dict(os.environ)
    extra = []
    if case["kind"] == "c":
        cmd = [MALLOCBENCH, "-p", "-e", str(ROUNDS)]
    else:
        env["BENCH_WAIT_FILE"] = os.path.join(inner, "go")
        env["BENCH_DONE_FILE"] = os.path.join(inner, "done")
        script = os.path.join(inner, "churn.py")
        cmd = interpreter(case["py"])[0] + [script, str(ROUNDS)]
        if case["depth1"]:
            extra = ["--py-depth", "1"]
    snap = os.path.join(tmp, "snap.json")
    errf = open(os.path.join(tmp, "agent.err"), "w+")
    a = subprocess.Popen([AGENT, "--probes", "uprobe", "-v", "--batch",
                          "-o", snap] + extra +
                         ["--"] + cmd, stdout=subprocess.PIPE,
                         stderr=errf, text=True, env=env)
    r0 = r1 = None
    result = {}
    for line in a.stdout:
        m = re.match(r"mallocbench: pid (\d+) waiting", line)
        if line.startswith("waiting") or (m and r0 is None):
            r0 = reading(a.pid)
            if m:
                os.kill(int(m.group(1)), signal.SIGUSR1)
            else:
                open(go, "w").close()
        elif m or line.startswith("elapsed="):
            r1 = reading(a.pid)
            if m:
                os.kill(int(m.group(1)), signal.SIGUSR1)
            else:
                open(done, "w").close()
        sec = re.search(r"(?:elapsed=|wall_s=)([0-9.]+)", line)
        if sec:
            result["seconds"] = float(sec.group(1))
    a.wait()
    errf.seek(0)
    err = errf.read()
    errf.close()
    if r0 is None or r1 is None or a.returncode:
        sys.stderr.write(err[-2000:])
        raise SystemExit("bench-pywalk: %s: the run failed (exit %s)" %
                         (case["name"], a.returncode))
    progs, stats = delta(r0, r1)
    entry = [sum(v[i] for k, v in progs.items() if k in ENTRIES)
             for i in (0, 1)]
    total = sum(v[0] for v in progs.values())
    nested = stats.get("nested", 0) if stats else 0
    allocs = entry[1] - nested
    result.update(case=case["name"], progs=progs, stats=stats,
                  entry_calls=entry[1], allocs=allocs,
                  entry_ns=entry[0] / entry[1] if entry[1] else None,
                  total_ns=total / allocs if allocs > 0 else None,
                  frames=py_frames(snap) if case["kind"] == "py" else None)
    if stats and stats.get("py_walks"):
        result["hit"] = 1 - stats["py_identified"] / stats["py_walks"]
        result["walks"] = stats["py_walks"]
    exit_stats = re.search(r"probe stats: (.*)", err)
    result["exit_stats"] = exit_stats.group(1) if exit_stats else None
    return result


# ---- the cases and the table -------------------------------------------------

def version(py):
    cmd = interpreter(py)[0]
    return subprocess.run(cmd + ["-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip() or "?"


def cases():
    out = [{"name": "floor", "kind": "c"}]
    for py in PYTHONS:
        for d1 in (False, True):
            out.append({"name": py + (" depth 1" if d1 else ""), "kind": "py",
                        "py": py, "depth1": d1})
    return out


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def spread(runs, key):
    """min-max of a figure over the runs: a bimodal case shows here."""
    vals = [r[key] for r in runs if r.get(key) is not None]
    return "%.0f-%.0f" % (min(vals), max(vals)) if vals else "-"


def num(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)


def rows(by, versions):
    floor = med(by["floor"], "total_ns")
    base = med(by.get("3.11", []), "total_ns")
    lines = []
    for name, runs in by.items():
        total, entry = med(runs, "total_ns"), med(runs, "entry_ns")
        py = name.split()[0]
        label = ("C, no walk (mallocbench)" if name == "floor" else
                 "%s%s (%s)" % (py, name[len(py):].replace(" depth 1",
                                ", `--py-depth 1`"), versions.get(py, "?")))
        walk = None if name == "floor" or total is None else total - floor
        hit = med(runs, "hit")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, num(med(runs, "allocs")), num(entry), num(total),
            spread(runs, "total_ns"),
            "-" if name == "floor" or "depth" in name else ratio(total, base),
            ratio(total, floor), num(walk),
            num(med(runs, "frames"), "%.1f"),
            "-" if hit is None else "%.2f %%" % (100 * hit)))
    return lines


def main():
    for py in PYTHONS:
        if py not in HOST_PYTHONS and not os.path.exists(
                os.path.join(SID, "usr/bin/python" + py)):
            raise SystemExit("bench-pywalk: no python%s in %s "
                             "(scripts/sid-root.sh makes the root)" % (py, SID))
    tmp = tempfile.mkdtemp(prefix="memprof-bench-pywalk.",
                           dir=os.path.join(SID, "tmp"))
    try:
        os.chmod(tmp, 0o755)
        for f in ("churn.py", "benchlib.py"):
            shutil.copy(os.path.join(BENCH_PY, f), tmp)
        versions = {py: version(py) for py in PYTHONS}
        by = {c["name"]: [] for c in cases()}
        for rep in range(REPS):
            for c in cases():
                r = run_case(c, tmp)
                by[c["name"]].append(r)
                log("run %d/%d %s: %s allocs, entry %s ns, total %s ns/alloc, "
                    "hits %s" % (rep + 1, REPS, c["name"], r["allocs"],
                                 num(r["entry_ns"]), num(r["total_ns"]),
                                 num(r.get("hit"), "%.4f")))
                print(json.dumps(r), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("@@")
    print("\n".join(rows(by, versions)))


if __name__ == "__main__":
    main()
