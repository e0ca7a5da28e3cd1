"""Beside other tracers: our agent traces a notebook with known per-cell
bytes while other uprobe users come and go on the same kernel: a second
memprof-bpf (three times), bcc's memleak -p, and a bpftrace uprobe on
libc's malloc (system-wide). Our per-cell figures stay exact."""
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import AGENT, ROOT, load, wait_for
from test_notebook import (agent, kernel, marker_library, run_until_marked,
                           state_of)

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

MiB = 1 << 20
BCC_FIXED = os.path.join(ROOT, "scripts", "bcc_fixed.py")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def run(c, nb, source):
    nb.cells.append(nbformat.v4.new_code_cell(source))
    cell = c.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return cell.get("execution_count")


@pytest.fixture
def second_agent(tmp_path):
    """Start and stop another memprof-bpf --comm ipykernel, with its own
    directories; it must attach to the kernel before it is stopped."""
    def cycle(pid, during):
        state = tmp_path / ("second-state-%d" % time.monotonic_ns())
        out = tmp_path / ("second-%d" % time.monotonic_ns())
        out.mkdir()
        env = dict(os.environ, MEMPROF_BPF_STATE_DIR=str(state))
        p = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D", str(out),
                              "--comm", "ipykernel"],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert wait_for(lambda: (state / ("%d.json" % pid)).exists(),
                            30), "the second agent never attached"
            during()
        finally:
            p.send_signal(signal.SIGINT)
            err = p.communicate(timeout=60)[1]
        assert p.returncode == 0, err
    return cycle


def memleak_command():
    """memleak-bpfcc (scripts/install-deps.sh installs bcc) with the kernel
    headers it compiles against (scripts/kernel-headers.sh makes them once
    per machine)."""
    tool = shutil.which("memleak-bpfcc")
    assert tool, "memleak-bpfcc is missing: run scripts/install-deps.sh"
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts",
                                             "kernel-headers.sh")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    headers = r.stdout.strip().splitlines()[-1]
    return tool, dict(os.environ, BCC_KERNEL_SOURCE=headers)


def stale_uprobe_on_malloc():
    """The kernel's last word on a refused uprobe: one of ref_ctr 0 (ours,
    or fixed bcc's) is still registered where memleak wants ref_ctr 6."""
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    tail = r.stdout.splitlines()[-5:]
    return any("ref_ctr_offset mismatch" in l and
               "ref_ctr_offset(old): 0x0" in l for l in tail)


def tool_running(cmd, ready, during, env=None):
    """Run a tracer until it prints ready (a substring of its output), do
    during(), then stop it with SIGINT."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env,
                         start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line)
            if ready in line:
                break
        assert any(ready in l for l in seen), "".join(seen)
        during()
    finally:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()


def test_exact_beside_other_tracers(tmp_path, second_agent):
    if not marker_library():
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    memleak, memleak_env = memleak_command()
    with agent(tmp_path) as (a, state), \
            kernel(state, nb=nbformat.v4.new_notebook()) as (c, nb):
        assert wait_for(lambda: state_of(state, c.pid) is not None, 20)
        run_until_marked(c, nb, str(state), c.pid)
        want = {}  # label -> bytes the cell keeps

        def keep(i, n):
            label = "In [%d]" % run(c, nb, "k%d = bytearray(%d)" % (i, n))
            want[label] = n + 1

        def churn_during(i, n, action):
            """A cell replaces its array over and over (an allocation and
            a free each time) while action() attaches another tracer and
            takes it away; it ends holding one array of n bytes."""
            flag = tmp_path / ("done-%d" % i)
            errors = []

            def side():
                try:
                    action()
                except BaseException as e:  # reported by the test below
                    errors.append(e)
                finally:
                    flag.touch()
            th = threading.Thread(target=side)
            th.start()
            try:
                label = "In [%d]" % run(c, nb, (
                    "import os\n"
                    "while not os.path.exists(%r):\n"
                    "    k%d = bytearray(%d)\n") % (str(flag), i, n))
            finally:
                th.join()
            assert not errors, errors
            want[label] = n + 1

        keep(0, 16 * MiB)
        for i in range(1, 4):  # a second agent comes and goes, 3 times
            churn_during(i, (16 + i) * MiB,
                         lambda: second_agent(c.pid, lambda: time.sleep(1)))
            keep(10 + i, (32 + i) * MiB)
        # memleak prints its first report a second after its probes are
        # in. Debian's bcc gives its uprobes a stray reference counter
        # offset, which the kernel refuses beside ours (the next test):
        # run it as later bcc releases do (scripts/bcc_fixed.py).
        churn_during(20, 40 * MiB, lambda: tool_running(
            ["/usr/bin/python3", BCC_FIXED, memleak, "-p", str(c.pid), "1"],
            "outstanding allocations", lambda: time.sleep(1),
            env=memleak_env))
        keep(21, 41 * MiB)
        # BEGIN runs once the uprobe is in place; system-wide (no pid), as
        # a one-liner is usually run.
        assert shutil.which("bpftrace"), "bpftrace is missing"
        churn_during(30, 48 * MiB, lambda: tool_running(
            ["bpftrace", "-B", "none", "-e",
             "BEGIN { printf(\"ready\\n\"); } "
             "uprobe:%s:malloc { @n = count(); }" % LIBC],
            "ready", lambda: time.sleep(1)))
        keep(31, 49 * MiB)
        # A re-run that replaces an array, and a temporary.
        label = "In [%d]" % run(c, nb, "k0 = bytearray(%d)" % (24 * MiB))
        want[label] = 24 * MiB + 1
        first = [l for l in want if l != label][0]
        want[first] = 0
        label = "In [%d]" % run(c, nb, "t = bytearray(%d); del t" % (64 * MiB))
        want[label] = 0

        def figures():
            doc = state_of(state, c.pid) or {"cells": []}
            return {r["label"]: r for r in doc["cells"]}
        assert wait_for(lambda: all(
            l in figures() and figures()[l]["finished_at"]
            for l in want), 10), figures()
        got = figures()
        pid = c.pid
        start = time.monotonic()
        a.send_signal(signal.SIGINT)
        a.wait(60)
        took = time.monotonic() - start
    for label, n in want.items():
        live = got[label]["live_bytes"]
        print(label, n, live, got[label]["count"])
        assert n <= live <= n + max(0.01 * n, 64 << 10), (label, n, live)
    snap = load(tmp_path / ("memprof-python3-%d-signal.json.gz" % pid))
    assert snap["dropped_events"] == 0
    print("agent exit: %.2f s" % took)


def test_waits_for_a_tracer_that_holds_the_allocator(tmp_path):
    """Debian's bcc memleak came first, with its stray reference counter
    offset on malloc: the kernel refuses our probe there ("ref_ctr_offset
    mismatch" in dmesg). The agent says so in one line, waits, and traces
    the kernel exactly once memleak has gone."""
    memleak, memleak_env = memleak_command()
    state = tmp_path / "state"
    log = tmp_path / "agent.err"
    with kernel(state, nb=nbformat.v4.new_notebook()) as (c, nb):
        run(c, nb, "pass")
        held = threading.Event()
        release = threading.Event()

        def hold():
            held.set()
            release.wait(120)
        # memleak's own attach can fail (CI run of 81786fe: "Failed to
        # attach BPF to uprobe", falling back to the unmounted tracefs)
        # while a test before it still has a probe on malloc: that is the
        # peer's precondition failing, not what this test checks. Retry it.
        for _ in range(3):
            th = threading.Thread(target=tool_running, args=(
                [memleak, "-p", str(c.pid), "1"], "outstanding allocations",
                hold), kwargs={"env": memleak_env})
            th.start()
            while th.is_alive() and not held.wait(1):
                pass
            if held.is_set():
                break
            th.join()
            time.sleep(3)
        if not held.is_set() and stale_uprobe_on_malloc():
            pytest.skip("memleak cannot take malloc: the kernel still holds "
                        "a uprobe with ref_ctr 0 there (dmesg: "
                        "ref_ctr_offset mismatch) and no tracer owns it")
        try:
            assert held.is_set(), "memleak never attached in 3 tries"
            with open(log, "w") as err:
                a = subprocess.Popen(
                    [AGENT, "--batch", "-i", "0.2", "-D", str(tmp_path),
                     "--comm", "ipykernel"], stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=dict(os.environ, MEMPROF_BPF_STATE_DIR=str(state)))
            blocked = "pid %d (python3): uprobe at " % c.pid
            assert wait_for(lambda: blocked in log.read_text(), 30), \
                log.read_text()
            line, = [l for l in log.read_text().splitlines()
                     if blocked in l]
            assert "another tracer holds a probe there" in line, line
            assert "trying again every second" in line, line
            assert not state_of(state, c.pid)
        finally:
            release.set()
            th.join()
        try:
            # memleak gone: the agent attaches on its next try.
            assert wait_for(lambda: state_of(state, c.pid), 30), \
                log.read_text()
            # No extension here: the run is named by its code's file. The
            # measured cell prints nothing (printed text waits in the
            # kernel's buffers, counted in the cell): its file goes to a
            # name bound beforehand, printed by the next cell.
            for src in ("import sys; k = f = None",
                        "k = bytearray(%d)\n"
                        "f = sys._getframe().f_code.co_filename" % (32 * MiB),
                        "print(f)"):
                nb.cells.append(nbformat.v4.new_code_cell(src))
                cell = c.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            label = os.path.basename(cell.outputs[0]["text"].strip())

            def figures():
                doc = state_of(state, c.pid) or {"cells": []}
                return {r["label"]: r for r in doc["cells"]}
            assert wait_for(lambda: label in figures(), 10), figures()
            assert figures()[label]["live_bytes"] == 32 * MiB + 1
        finally:
            a.send_signal(signal.SIGINT)
            a.wait(60)
    assert a.returncode == 0, log.read_text()
    # Said once, not at every try.
    assert log.read_text().count(blocked) == 1, log.read_text()
