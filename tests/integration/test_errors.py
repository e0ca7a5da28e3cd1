"""Bad input: one clear line on stderr, a non-zero exit, no data lost."""
import os
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
        # While the program sleeps: a periodic snapshot holds its 10 MB.
        assert wait_for(lambda: out.exists() and
                        load(out)["reason"] == "periodic", 10)
        first = load(out)
        assert first["peak"]["bytes"] >= 10_000_001
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


def memory_cgroup_v1():
    """A fresh child of this session's v1 memory cgroup, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            mine = [l.split(":", 2)[2].strip() for l in f
                    if ":memory:" in l]
    except OSError:
        return None
    base = "/sys/fs/cgroup/memory" + (mine[0] if mine else "")
    if not mine or not os.path.isdir(base):
        return None
    path = os.path.join(base, "memprof-oom-%d" % os.getpid())
    os.makedirs(path, exist_ok=True)
    return path


def test_oom_kill_writes_an_oom_snapshot(tmp_path):
    cg = memory_cgroup_v1()
    if not cg:
        pytest.skip("no cgroup v1 memory controller here")
    limit = 150 * 1024 * 1024
    out = tmp_path / "oom.json"
    try:
        with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
            f.write(str(limit))
        # The shell joins the cgroup, then becomes Python, which grows in
        # 10 MB steps until the kernel's OOM killer ends it.
        r = run_agent(["-o", str(out), "--", "/bin/sh", "-c",
                       "echo $$ > %s/cgroup.procs; exec /usr/bin/python3.11 "
                       "-c 'x = []\nwhile True: x.append(bytearray(10**7))'"
                       % cg], timeout=120)
        assert r.returncode == 128 + 9, r.stderr  # the command's own fate
        snap = load(out)
        assert snap["reason"] == "oom", r.stderr
        assert snap["exit_signal"] == 9
        assert snap["oom"]["limit_bytes"] == limit
        assert snap["oom"]["memory_cgroup"].endswith(os.path.basename(cg))
        # The breakdown at the peak: the 10 MB buffers, up to the limit.
        assert 100 * 10**6 <= snap["peak"]["bytes"] <= limit + 20 * 10**6
        top = snap["peak"]["stacks"][0]
        assert top["bytes"] >= 100 * 10**6
        warn = [l for l in r.stderr.splitlines() if "lack of memory" in l]
        assert len(warn) == 1
    finally:
        os.rmdir(cg)
