"""Bad input: one clear line on stderr, a non-zero exit, no data lost."""
import os
import re
import subprocess

import pytest

from conftest import AGENT, load, prog, run_agent


def one_line_error(r, code, text):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("memprof-bpf: ")
    assert text in lines[0], lines[0]


def test_bad_flag():
    one_line_error(run_agent(["--bogus"]), 2, "bad option")


def test_bad_interval():
    one_line_error(run_agent(["-i", "zero", "--pid", "1"]), 2, "--interval")


def test_nothing_to_trace():
    one_line_error(run_agent([]), 2, "nothing to trace")


def test_no_such_pid():
    one_line_error(run_agent(["--pid", "999999"]), 2, "no such process")


def test_command_not_found(tmp_path):
    one_line_error(run_agent(["-o", str(tmp_path / "x.json"), "--",
                              "/nonexistent/prog"]), 2, "cannot run")


def test_not_root():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", AGENT, "--pid", "1"],
                       capture_output=True, text=True, timeout=30)
    one_line_error(r, 2, "must run as root")


def test_no_allocator_in_target(tmp_path):
    # A stripped static binary: no libc mapped, no malloc symbol anywhere.
    exe = tmp_path / "static_stripped"
    src = tmp_path / "s.c"
    src.write_text("#include <unistd.h>\nint main(void){pause();}\n")
    subprocess.run(["gcc", "-static", "-s", "-O1", str(src), "-o",
                    str(exe)], check=True)
    p = subprocess.Popen([str(exe)])
    try:
        one_line_error(run_agent(["--pid", str(p.pid)]), 2, "allocator")
    finally:
        p.kill()


def test_full_disk_keeps_the_data(tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                    str(mnt)], check=True)
    try:
        with open(mnt / "filler", "wb") as f:
            try:
                f.write(b"x" * (1 << 20))
            except OSError:
                pass
        r = run_agent(["-o", str(mnt / "peak.json"), "--",
                       prog("allocs")])
        assert r.returncode == 1, r.stderr
        errs = [l for l in r.stderr.splitlines() if "cannot write" in l]
        assert len(errs) == 1 and "No space left" in errs[0]
        saved = errs[0].split("saved to ")[-1].strip()
        assert load(saved)["peak"]["bytes"] == 103324
        os.unlink(saved)
    finally:
        subprocess.run(["umount", str(mnt)])


def test_snapshot_every_replaces_a_rolling_snapshot(tmp_path):
    import subprocess
    import time
    from conftest import AGENT, load, wait_for
    out = tmp_path / "roll.json"
    code = ("import sys, time\n"
            "a = bytearray(10_000_000)\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "time.sleep(3)\n"
            "b = bytearray(20_000_000)\n")
    p = subprocess.Popen([AGENT, "--snapshot-every", "0.3", "-o", str(out),
                          "--", "/usr/bin/python3.11", "-c", code],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        # While the program sleeps: a periodic snapshot holds its 10 MB
        # (one written before the agent read that allocation may be
        # there first: the agent wakes early for new Python code objects).
        def periodic_with_10mb():
            snap = load(out) if out.exists() else None
            return snap if snap and snap["reason"] == "periodic" and \
                snap["peak"]["bytes"] >= 10_000_001 else None
        first = wait_for(periodic_with_10mb, 10)
        assert first, load(out) if out.exists() else "no snapshot"
        assert first["exit_code"] is None
        time.sleep(0.8)
        assert load(out)["taken_at"] > first["taken_at"]  # replaced
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        assert p.wait(30) == 0
    finally:
        p.kill()
    last = load(out)
    assert last["reason"] != "periodic"  # the final snapshot replaced it
    assert last["peak"]["bytes"] >= 30_000_002
    # Every write went through a temp file and a rename: none left over.
    assert [f.name for f in tmp_path.iterdir()] == ["roll.json"]


# ---- OOM kills ---------------------------------------------------------

OOM_LIMIT = 128 << 20  # the script grows in 16 MiB steps: a kill in ~1 s
OOM_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "py",
                          "oom_grow.py")


def cgroup_mount(fstype, option=None):
    """Mount point of a cgroup (v1, with option among its controllers) or
    cgroup2 file system, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            _, where, typ, opts = line.split()[:4]
            if typ == fstype and (option is None or
                                  option in opts.split(",")):
                return where
    return None


def own_memory_cgroup():
    """("v1"|"v2", directory, path in the hierarchy) of this test's own
    memory cgroup: the v1 memory controller if it is mounted, else cgroup2
    with the memory controller. (None, why) when neither is usable."""
    with open("/proc/self/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f]
    v1 = [p for _, ctl, p in lines if "memory" in ctl.split(",")]
    if v1:
        mnt = cgroup_mount("cgroup", "memory")
        if mnt and os.path.isdir(mnt + v1[0]):
            return "v1", mnt + v1[0], v1[0]
        return None, "the v1 memory cgroup %s is not mounted" % v1[0]
    v2 = [p for hid, ctl, p in lines if hid == "0" and ctl == ""]
    mnt = cgroup_mount("cgroup2")
    if not v2 or not mnt:
        return None, "no memory controller: neither cgroup v1 nor v2"
    with open(os.path.join(mnt, "cgroup.controllers")) as f:
        if "memory" not in f.read().split():
            return None, "cgroup2 at %s has no memory controller" % mnt
    return "v2", mnt + v2[0].rstrip("/"), v2[0].rstrip("/")


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def limit_v2(base, path, limit):
    """memory.max (and no swap) on a v2 child; the memory controller must
    be enabled in the parent, which fails when the parent holds processes
    (no internal processes) unless it is the root."""
    if not os.path.exists(os.path.join(path, "memory.max")):
        try:
            write(os.path.join(base, "cgroup.subtree_control"), "+memory")
        except OSError as e:
            pytest.skip("cannot enable the cgroup2 memory controller "
                        "under %s: %s" % (base, e))
    write(os.path.join(path, "memory.max"), limit)
    if os.path.exists(os.path.join(path, "memory.swap.max")):
        write(os.path.join(path, "memory.swap.max"), 0)


def limit_v1(path, limit):
    write(os.path.join(path, "memory.limit_in_bytes"), limit)
    memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
    if os.path.exists(memsw):  # no swapping out of the OOM either
        write(memsw, limit)


def remove_cgroup(path):
    """Kill what is left in it, then rmdir (retried: a dying task leaves
    the cgroup a moment after its SIGKILL)."""
    import signal
    import time
    for _ in range(100):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    os.rmdir(path)


@pytest.fixture
def oom_cgroup(request):
    """A fresh memory cgroup with a limit, under this test's own cgroup;
    removed afterwards, pass or fail. Yields (directory, path as
    /proc/PID/cgroup names it)."""
    kind, base, rel = own_memory_cgroup()
    if not kind:
        pytest.skip(base)
    name = "memprof-%d-%s" % (os.getpid(),
                              re.sub(r"\W+", "-", request.node.name))
    path = os.path.join(base, name)
    os.mkdir(path)
    try:
        if kind == "v1":
            limit_v1(path, OOM_LIMIT)
        else:
            limit_v2(base, path, OOM_LIMIT)
        yield path, rel.rstrip("/") + "/" + name
    finally:
        remove_cgroup(path)


def allocating_line():
    with open(OOM_SCRIPT) as f:
        return next(i for i, l in enumerate(f, 1)
                    if "# the allocating line" in l)


def check_oom_snapshot(snap, cgroup, stderr):
    assert snap["reason"] == "oom", stderr
    assert snap["exit_signal"] == 9
    assert snap["oom"] == {"memory_cgroup": cgroup,
                           "limit_bytes": OOM_LIMIT}, stderr
    # The breakdown at the peak: the 16 MiB buffers, up to the limit.
    peak = snap["peak"]
    assert OOM_LIMIT // 2 <= peak["bytes"] <= OOM_LIMIT + (32 << 20)
    top = peak["stacks"][0]
    assert top["bytes"] >= OOM_LIMIT // 2
    py = [(f["file"], f["function"], f["line"]) for f in top["frames"]
          if not f["native"]]
    assert py and py[-1] == (OOM_SCRIPT, "<module>", allocating_line()), \
        top["frames"]
    warn = [l for l in stderr.splitlines() if "lack of memory" in l]
    assert len(warn) == 1, stderr


def oom_as_command(tmp_path, cgroup_dir):
    """The agent starts it: a shell joins the cgroup, then execs Python."""
    out = tmp_path / "oom.json"
    r = run_agent(["-o", str(out), "--", "/bin/sh", "-c",
                   'echo $$ > "$1/cgroup.procs" && exec /usr/bin/python3 '
                   '"$2"', "sh", cgroup_dir, OOM_SCRIPT], timeout=60)
    assert r.returncode == 128 + 9, r.stderr  # the command's own fate
    return load(out), r.stderr


def oom_attached(tmp_path, cgroup_dir):
    """A process the agent did not start: --pid, then it grows."""
    join = os.path.join(cgroup_dir, "cgroup.procs")
    p = subprocess.Popen(["/usr/bin/python3", OOM_SCRIPT, "wait"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, preexec_fn=lambda: write(join,
                                                             os.getpid()))
    a = None
    try:
        assert p.stdout.readline().strip() == "ready"
        a = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D",
                              str(tmp_path), "--pid", str(p.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = a.stdout.readline()  # the batch line: probes attached
        while line and str(p.pid) not in line:
            line = a.stdout.readline()
        assert line, a.stderr.read()
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.wait(30) == -9
        _, err = a.communicate(timeout=30)
        assert a.returncode == 0, err
    finally:
        p.kill()
        p.wait()
        if a and a.poll() is None:
            a.kill()
            a.wait()
    snaps = sorted(f.name for f in tmp_path.glob("memprof-*.json.gz"))
    assert snaps == ["memprof-python3-%d-oom.json.gz" % p.pid], (snaps, err)
    return load(tmp_path / snaps[0]), err


@pytest.mark.parametrize("how", ["command", "pid"])
@pytest.mark.parametrize("round_", range(10))
def test_oom_kill_writes_an_oom_snapshot(tmp_path, oom_cgroup, round_, how):
    # A real OOM kill in a memory cgroup with a 128 MiB limit, 10 rounds
    # each way: any miss of the "oom" reason fails its own round.
    cgroup_dir, cgroup = oom_cgroup
    run = oom_as_command if how == "command" else oom_attached
    snap, stderr = run(tmp_path, cgroup_dir)
    check_oom_snapshot(snap, cgroup, stderr)


def test_a_plain_sigkill_is_not_an_oom(tmp_path, oom_cgroup):
    # Killed by SIGKILL in a memory cgroup, but not by the OOM killer: no
    # record, and the cgroup counted no OOM kill.
    cgroup_dir, _ = oom_cgroup
    out = tmp_path / "kill.json"
    r = run_agent(["-o", str(out), "--", "/bin/sh", "-c",
                   'echo $$ > "$1/cgroup.procs" && exec /usr/bin/python3 -c '
                   '"import os; b = bytearray(10**7); os.kill(os.getpid(), 9)"',
                   "sh", cgroup_dir], timeout=60)
    assert r.returncode == 128 + 9, r.stderr
    snap = load(out)
    assert (snap["reason"], snap["exit_signal"], snap["oom"]) == \
        ("exit", 9, None)
    assert "lack of memory" not in r.stderr
