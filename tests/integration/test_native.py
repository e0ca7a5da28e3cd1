"""The native tracer end to end: C programs whose allocations are known in
advance, run under ./memprof-bpf, checked byte for byte."""
import os
import signal
import subprocess
import time

import pytest

from conftest import (AGENT, by_function, load, prog, run_agent,
                      split_census, wait_for)

# libc's own startup/stdio allocations (e.g. the 4 KiB stdout buffer) are
# allowed in "current", never more than this.
NOISE = 8192


# The command's allocations through uprobes, or through the in-process
# recorder (--probes recorder, issue 17): the same figures either way.
PROBES = pytest.mark.parametrize("probes", ["uprobe", "recorder"])


def traced(tmp_path, name, *args, probes="uprobe"):
    out = tmp_path / (name + ".json")
    r = run_agent(["-o", str(out), "--probes", probes, "-v", "--",
                   prog(name)] + list(args))
    # the recorder took the allocator's place, or the probes did
    assert ("allocator in the in-process recorder" in r.stderr) == (
        probes == "recorder"), r.stderr
    assert r.returncode == 0, r.stderr
    snap = load(out)
    assert snap["schema"] == "memprof-bpf/snapshot"
    assert snap["version"] == 1
    assert snap["dropped_events"] == 0
    return snap


@PROBES
def test_every_allocator_function(tmp_path, probes):
    snap = traced(tmp_path, "allocs", probes=probes)
    peak = by_function(snap["peak"])
    assert snap["peak"]["bytes"] == 103324
    assert peak == {
        "do_mmap": (65536, 1),
        "do_pvalloc": (8192, 1),
        "do_valloc": (7000, 1),
        "do_aligned_alloc": (6000, 1),
        "do_posix_memalign": (5000, 1),
        "do_memalign": (4096, 1),
        "do_realloc": (3000, 1),
        "do_calloc": (2000, 1),
        "do_reallocarray": (1500, 1),
        "do_malloc": (1000, 1),
    }
    # The failed 4 EiB malloc counts nothing; partial munmap leaves 32 KiB.
    cur = by_function(snap["current"])
    assert "do_fail" not in cur and "do_fail" not in peak
    assert cur["do_mmap"] == (32768, 1)
    assert snap["current"]["bytes"] - 32768 <= NOISE
    # Frames carry the module and native flag; stacks sorted by bytes.
    top = snap["peak"]["stacks"][0]["frames"][-1]
    assert top["module"].endswith("/allocs") and top["native"] is True
    sizes = [s["bytes"] for s in snap["peak"]["stacks"]]
    assert sizes == sorted(sizes, reverse=True)
    assert snap["reason"] == "exit" and snap["exit_code"] == 0


@PROBES
def test_threads_allocating_together(tmp_path, probes):
    snap = traced(tmp_path, "threads", probes=probes)
    peak = by_function(snap["peak"])
    assert peak["hold"] == (1000000, 400)
    # pthread's own TLS blocks (4 x 272 B) are the only other bytes;
    # thread stacks (MAP_STACK) are not heap.
    assert 1000000 <= snap["peak"]["bytes"] <= 1000000 + NOISE
    assert by_function(snap["current"]).get("hold", (0, 0)) == (0, 0)


@PROBES
def test_realloc_growth_and_mremap(tmp_path, probes):
    snap = traced(tmp_path, "remaps", probes=probes)
    # Growth by doubling: the biggest transient is the final 1 MiB block
    # (moves above the mmap threshold are mremaps: one copy at a time).
    assert by_function(snap["peak"])["grow_step"] == (1048576, 1)
    assert snap["peak"]["bytes"] == 1048576
    cur = by_function(snap["current"])
    assert "grow_step" not in cur  # realloc(p, 0) freed it
    assert cur["remap_site"] == (49152, 1)  # 16 pages - 4 unmapped


@PROBES
def test_exec_replaces_the_heap(tmp_path, probes):
    snap = traced(tmp_path, "execer", probes=probes)
    peak = by_function(snap["peak"])
    assert peak == {"after_exec": (77777, 1)}
    assert "before_exec" not in by_function(snap["current"])


def test_small_children_leave_no_file(tmp_path):
    """With -D, a forked helper gets a file only if its peak reached 1 MiB
    (a Python holding a 4 MiB bytearray does, `uname` does not), unless
    --all-snapshots asks for every one."""
    script = ("uname >/dev/null; /usr/bin/python3 -c 'x = bytearray(4 << 20)'"
              "; true")  # no exec of the last command: sh stays sh
    for extra, want_uname in (([], False), (["--all-snapshots"], True)):
        d = tmp_path / ("all" if extra else "default")
        d.mkdir()
        r = run_agent(["-D", str(d)] + extra + ["--", "sh", "-c", script])
        assert r.returncode == 0, r.stderr
        names = sorted(p.name for p in d.glob("*.json.gz"))
        comms = {n.split("-")[1] for n in names}
        py, = d.glob("memprof-python3-*-exit.json.gz")
        assert load(py)["peak"]["bytes"] >= 4 << 20
        assert ("uname" in comms) == want_uname, names
        assert "sh" in comms, names  # the command itself, always


@PROBES
def test_fork_child_inherits_and_is_traced(tmp_path, probes):
    out = tmp_path / "parent.json"
    r = run_agent(["-D", str(tmp_path), "--all-snapshots", "-o", str(out),
                   "--probes", probes, "--", prog("forker")])
    assert r.returncode == 0, r.stderr
    parent = load(out)
    children = [p for p in tmp_path.glob("memprof-forker-*-exit.json")]
    assert len(children) == 1
    child = load(children[0])
    assert child["pid"] != parent["pid"]
    assert by_function(child["peak"]) == {"child_alloc": (50000, 1),
                                          "parent_alloc": (10000, 1)}
    assert child["current"]["bytes"] == 0
    pk = by_function(parent["peak"])
    assert pk["parent_late"] == (20000, 1)
    assert pk["parent_alloc"] == (10000, 1)
    assert parent["peak"]["bytes"] - 30000 <= NOISE


def start_waiter():
    p = subprocess.Popen([prog("waiter")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def attach(args, tmp_path):
    a = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D",
                          str(tmp_path)] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    return a


def test_attach_to_running_pid(tmp_path):
    w = start_waiter()
    a = attach(["--pid", str(w.pid)], tmp_path)
    try:
        # The batch line for the pid means probes are attached.
        line = a.stdout.readline()
        while str(w.pid) not in line:
            line = a.stdout.readline()
            assert line, a.stderr.read()
        w.stdin.write("go\n")
        w.stdin.flush()
        assert w.stdout.readline().strip() == "done"
        w.stdin.write("exit\n")
        w.stdin.flush()
        w.wait(10)
        assert a.wait(10) == 0, a.stderr.read()
    finally:
        w.kill()
        a.kill()
    snap = load(tmp_path / ("memprof-waiter-%d-exit.json.gz" % w.pid))
    peak, old_peak = split_census(by_function(snap["peak"]))
    now, old_now = split_census(by_function(snap["current"]))
    # glibc mmaps blocks this big itself: counted once, as malloc.
    assert peak == {"big_alloc": (900000, 3)}
    assert now == {}
    # The census counted the pre-attach block (with libc's stdio
    # buffers); its free after attach took exactly its usable 5000 B.
    heap = "(before attach) heap"
    assert old_peak[heap][0] >= 5000
    assert old_peak[heap][0] - old_now[heap][0] == 5000
    assert old_peak[heap][1] - old_now[heap][1] == 1
    assert snap["peak"]["bytes"] == 900000 + sum(
        b for b, _ in old_peak.values())
    assert snap["current"]["bytes"] == sum(b for b, _ in old_now.values())


def test_sigusr1_and_sigterm_write_snapshots(tmp_path):
    w = start_waiter()
    a = attach(["--pid", str(w.pid)], tmp_path)
    try:
        while str(w.pid) not in a.stdout.readline():
            pass
        w.stdin.write("go\n")
        w.stdin.flush()
        assert w.stdout.readline().strip() == "done"
        time.sleep(0.3)
        a.send_signal(signal.SIGUSR1)
        manual = wait_for(lambda: list(tmp_path.glob("*-manual.json.gz")))
        assert manual, a.stderr.read()
        a.send_signal(signal.SIGTERM)
        assert a.wait(10) == 0
    finally:
        w.kill()
        a.kill()
    snap = load(manual[0])
    assert snap["reason"] == "manual"
    now, old = split_census(by_function(snap["current"]))
    assert now == {"big_alloc": (600000, 2)}
    final = load(tmp_path / ("memprof-waiter-%d-signal.json.gz" % w.pid))
    # The peak: the three blocks over all the census counted.
    assert final["peak"]["bytes"] == 900000 + sum(
        final["census"]["bytes"].values())
    assert final["rss_bytes"] > 0


def test_comm_finds_processes_started_later(tmp_path):
    a = attach(["--comm", "waiter"], tmp_path)
    try:
        time.sleep(1.0)  # agent up before the targets exist
        ws = [start_waiter() for _ in range(2)]
        pids = {w.pid for w in ws}
        seen = set()
        deadline = time.time() + 20
        while seen != pids:
            assert time.time() < deadline, "not attached: %s" % seen
            line = a.stdout.readline()
            assert line, a.stderr.read()
            assert "attach failed" not in line, line
            f = line.split()
            if len(f) > 2 and f[1].isdigit() and "attaching" not in line:
                seen |= {int(f[1])} & pids
        for w in ws:
            w.stdin.write("go\n")
            w.stdin.flush()
            assert w.stdout.readline().strip() == "done"
            w.stdin.write("exit\n")
            w.stdin.flush()
            w.wait(10)
        for pid in pids:
            path = tmp_path / ("memprof-waiter-%d-exit.json.gz" % pid)
            assert wait_for(path.exists), a.stderr.read()
            # Found at exec, attached a moment later: what it allocated
            # meanwhile is the census's.
            doc = load(path)
            # Censuses are read one at a time: one that had not begun
            # when its process exited is given up, and says why.
            c = doc["census"]
            assert c["state"] == "done" or (
                c["state"] == "failed" and "exited" in c["warning"]), c
            assert doc["peak"]["bytes"] == 900000 + sum(
                doc["census"]["bytes"].values())
    finally:
        a.send_signal(signal.SIGINT)
        assert a.wait(10) == 0
        for w in ws:
            w.kill()


def test_batch_line_output(tmp_path):
    w = start_waiter()
    r = None
    try:
        r = run_agent(["--batch", "-i", "0.2", "-d", "1", "-D",
                       str(tmp_path), "--pid", str(w.pid)])
    finally:
        w.kill()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TIME", "PID", "COMM", "LIVE", "PEAK",
                                "RSS", "ALLOC/S", "DROPPED"]
    rows = [l for l in lines[1:] if str(w.pid) in l.split()]
    assert len(rows) >= 3
    assert "waiter" in rows[0]


def test_command_runs_as_the_sudo_user(tmp_path):
    out = tmp_path / "id.json"
    env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534")
    r = subprocess.run([AGENT, "-o", str(out), "--", "/usr/bin/id", "-u"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "65534"
    # The snapshot is handed to that user, readable by them only.
    st = os.stat(out)
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    assert st.st_mode & 0o777 == 0o600


def test_command_exit_status_is_passed_on(tmp_path):
    out = tmp_path / "x.json"
    r = run_agent(["-o", str(out), "--", "/bin/sh", "-c", "exit 3"])
    assert r.returncode == 3, r.stderr
    snap = load(out)
    assert snap["exit_code"] == 3 and snap["exit_signal"] is None


def test_duration_ends_with_reason_end(tmp_path):
    w = start_waiter()
    try:
        r = run_agent(["--batch", "-d", "0.5", "-D", str(tmp_path),
                       "--pid", str(w.pid)])
    finally:
        w.kill()
    assert r.returncode == 0, r.stderr
    snap = load(tmp_path / ("memprof-waiter-%d-end.json.gz" % w.pid))
    assert snap["reason"] == "end" and snap["exit_code"] is None


def test_children_exiting_do_not_stall_the_agent(tmp_path):
    # Detaching an exited child's probes takes seconds of RCU waits; done
    # inline it stalled event intake and the ring overflowed (millions of
    # records lost). The busy parent must lose nothing.
    out = tmp_path / "busy.json"
    bench = os.path.join(os.path.dirname(prog("x")), "..", "bench",
                         "mallocbench")
    r = run_agent(["-o", str(out), "--", "/bin/sh", "-c",
                   "(sleep 0.5; /bin/true; /bin/true) & exec %s 1500000"
                   % bench], timeout=120)
    assert r.returncode == 0, r.stderr
    snap = load(out)
    assert snap["dropped_events"] == 0
    assert snap["allocations"] >= 1500000


def test_recorder_that_cannot_be_found(tmp_path):
    """--probes recorder without its library: one line, exit 2."""
    env = dict(os.environ, MEMPROF_BPF_RECORDER=str(tmp_path / "none.so"))
    r = run_agent(["--probes", "recorder", "--", prog("allocs")], env=env)
    assert r.returncode == 2 and r.stderr == (
        "memprof-bpf: --probes recorder: %s: No such file or directory\n"
        % (tmp_path / "none.so")), r.stderr


@PROBES
def test_allocations_from_a_signal_handler(tmp_path, probes):
    """A timer's handler keeps 1000 blocks of 777 B between the main
    loop's mallocs: each one counted, none lost, no hang."""
    snap = traced(tmp_path, "sigalloc", probes=probes)
    assert by_function(snap["current"])["on_signal"] == (777000, 1000)


def test_recorder_fork_bomb(tmp_path):
    """Fifty children at once, each keeping 10 x 1000 B at its exit: the
    recorder sees each child from its first allocation (its records wait
    in the ring for its fork), with no uprobe to attach in between."""
    out = tmp_path / "parent.json"
    r = run_agent(["-D", str(tmp_path), "--all-snapshots", "-o", str(out),
                   "--probes", "recorder", "--", prog("forkbomb")],
                  timeout=120)
    assert r.returncode == 0, r.stderr
    parent = load(out)
    assert by_function(parent["peak"])["parent_work"] == (4096, 1)
    children = [load(p) for p in tmp_path.glob("memprof-forkbomb-*.json")
                if p != out and p.name != "parent.json"]
    children = [c for c in children if c["pid"] != parent["pid"]]
    assert len(children) == 50
    for c in children:
        assert by_function(c["current"]).get("child_work") == (10000, 10), \
            by_function(c["current"])
        assert c["dropped_events"] == 0


def test_recorder_eight_threads_a_million_each(tmp_path):
    """8 x 1,000,000 mallocs and frees: every record is counted or
    counted as dropped, and nothing stays live when none was dropped."""
    out = tmp_path / "churn8.json"
    r = run_agent(["-o", str(out), "--probes", "recorder", "--",
                   prog("churn8")], timeout=120)
    assert r.returncode == 0, r.stderr
    snap = load(out)
    dropped = snap["dropped_events"]
    assert snap["allocations"] + dropped >= 8_000_000, snap["allocations"]
    if dropped == 0:
        assert "churn" not in by_function(snap["current"])


def test_recorder_survives_its_agent(tmp_path):
    """The agent is killed (SIGKILL) while the command records: the
    command never waits for it, and runs to its end."""
    done = tmp_path / "done"
    a = subprocess.Popen([AGENT, "-b", "--probes", "recorder", "-o",
                          str(tmp_path / "x.json"), "--", prog("churn8"),
                          "20000000", str(done)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        a.kill()
        a.wait(10)
        assert wait_for(done.exists, timeout=120), "the command hung"
    finally:
        a.kill()
