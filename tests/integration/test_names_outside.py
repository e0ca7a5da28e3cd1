"""`memprof-bpf names`: a kernel's names read from outside (issue 16).

Real ipykernel kernels (Debian's 3.11 with pandas 1.5, and the unstable
root's 3.14 and 3.15 with numpy 2 and pandas 2.3) with no extension and no
agent, holding buffers whose sizes each test knows: a DataFrame and its
filtered copy, a view, a list of arrays, an unnamed result left in Out[N],
a dict holding an array. Then the same while a cell sleeps; plain scripts
on 3.8, 3.11, 3.13, 3.14 and 3.15; sizes and cells from a running agent;
and the bad inputs (not Python, no __main__ yet, a process that exits
during the read)."""
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from nbclient.util import run_sync

from conftest import AGENT, ROOT, sid_of, wait_for
from test_names import notebook, run
from test_notebook import agent

MiB = 1 << 20
N = 2_000_000  # rows of the DataFrame

CELLS = [
    "import numpy as np, pandas as pd",                                # 1
    "df = pd.DataFrame({'x': np.arange(%d), 'y': np.ones(%d)})" % (N, N),
    "f = df[df.x % 2 == 0]  # a filtered copy",                         # 3
    "a = np.ones(4_000_000)\nv = a[::2]",                              # 4
    "arrs = [np.zeros(1_000_000) for _ in range(3)]",                  # 5
    "np.full(1_500_000, 7.0)",                                         # 6
    "d = {'k': np.ones(2_500_000)}",                                   # 7
]

# What each name holds, from the cells: exclusive bytes, its cell.
KNOWN = {
    "a": (0, 4), "arrs": (3 * 8_000_000, 5), "Out[6]": (0, 6),
    "d": (20_000_000, 7),
}

# The DataFrames' block and index bytes, asked of pandas in the kernel
# (df's RangeIndex may have cached its values while f was made).
TRUTH = (
    "import json\n"
    "def _held(x):\n"
    "    cached = [c for c in getattr(x.index, '_cache', {}).values()\n"
    "              if isinstance(c, np.ndarray)]\n"
    "    return int(x.memory_usage(index=True).sum()) + \\\n"
    "        sum(c.nbytes for c in cached)\n"
    "print(json.dumps({'df': _held(df), 'f': _held(f)}))")


def names(pid, *args, env=None, timeout=60):
    """memprof-bpf names --pid PID ARGS: (exit code, stdout, stderr)."""
    r = subprocess.run([AGENT, "names", "--pid", str(pid)] + list(args),
                       capture_output=True, text=True, timeout=timeout,
                       env=env)
    return r.returncode, r.stdout, r.stderr


def rows_of(pid, env=None, *args):
    """names --format json for one process: (its object, rows by name)."""
    code, out, err = names(pid, "--format", "json", "-n", "0", "--hints", "20",
                           "--min-bytes", "1000000", *args, env=env)
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc) == 1 and doc[0]["pid"] == pid, doc
    return doc[0], {r["name"]: r for r in doc[0]["names"]}


def near(value, want, tol=0.02):
    return abs(value - want) <= tol * want


def check_kernel_rows(proc, rows, truth, labels):
    """The issue's figures: exclusive and shared bytes within 2% of the
    known sizes, and the cell each name was assigned in."""
    assert proc["estimated"] and proc["total_live_bytes"] is None
    assert near(rows["f"]["exclusive_bytes"], truth["f"]), rows["f"]
    assert rows["f"]["shared_with"] == [] and rows["f"]["type"] == \
        "DataFrame" and rows["f"]["summary"] == "(%d, 2)" % (N // 2)
    assert near(rows["df"]["exclusive_bytes"], truth["df"]), rows["df"]
    assert rows["df"]["summary"] == "(%d, 2)" % N
    for name, (exclusive, cell) in KNOWN.items():
        assert rows[name]["cell"] == labels[cell], (name, rows[name])
        if exclusive:
            assert near(rows[name]["exclusive_bytes"], exclusive), name
        else:
            assert rows[name]["exclusive_bytes"] < MiB, rows[name]
    assert rows["f"]["cell"] == labels[3] and rows["df"]["cell"] == labels[2]
    # v is a view of a: both reach a's 32 MB, neither frees it alone.
    assert near(rows["a"]["bytes"], 32_000_000)
    assert near(rows["v"]["bytes"], 32_000_000)
    assert rows["v"]["shared_with"] == ["a"] and rows["a"]["shared_with"] \
        == ["v"]
    assert "is a view of `a`" in rows["v"]["hint"]
    # The unnamed result: in Out[6] and `_`; %xdel drops both.
    assert near(rows["Out[6]"]["bytes"], 12_000_000)
    assert rows["Out[6]"]["shared_with"] == ["_"]
    assert "`%xdel _6`" in rows["Out[6]"]["hint"] or \
        "%xdel" in rows["_"]["hint"], rows["Out[6]"]
    assert "np" not in rows and "In" not in rows


def in_process_rows(c, nb):
    """big_objs() inside the kernel, for the same state."""
    text = run(c, nb, (
        "from memprof_bpf.names import big_objs as _b\n"
        "print(json.dumps({r.name: [r.bytes, r.exclusive_bytes, "
        "r.shared_with, r.cell] for r in _b(n=None, min_bytes=1 << 20,"
        " _lookup=False)}))"))
    return json.loads(text)


@pytest.fixture(params=[
    pytest.param(None, id="debian-3.11"),
    pytest.param("python3.14", id="sid-python3.14"),
    pytest.param("python3.15", id="sid-python3.15")])
def kernel_sid(request):
    """conftest's sid, with python3.15's kernel as well."""
    yield from sid_of(request)


@pytest.mark.timeout(1500)
def test_names_of_a_kernel_from_outside(tmp_path, kernel_sid):
    state = tmp_path / "state"
    state.mkdir()
    with notebook(state, sid=kernel_sid) as (c, nb):
        labels = []
        for source in CELLS:
            run(c, nb, source)
            labels.append("In [%d]" % nb.cells[-1].execution_count)
        labels.insert(0, None)  # labels[i]: CELLS[i - 1]'s
        proc, rows = rows_of(c.pid)
        truth = json.loads(run(c, nb, TRUTH))
        check_kernel_rows(proc, rows, truth, labels)
        # In-process and outside agree on the same state.
        inside = in_process_rows(c, nb)
        for name, (nbytes, exclusive, shared, cell) in inside.items():
            if name not in rows:
                continue  # _held, the results of the cells above
            r = rows[name]
            assert near(r["bytes"], nbytes), (name, r, nbytes)
            assert abs(r["exclusive_bytes"] - exclusive) <= max(
                0.02 * exclusive, 64 << 10), (name, r, exclusive)
            assert set(r["shared_with"]) - {"_", "__", "___"} == \
                set(shared) - {"_", "__", "___"}, (name, r, shared)
            assert r["cell"] == cell, (name, r, cell)
        # The text table: the columns and hints.
        code, out, err = names(c.pid)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "pid %d (python %s)" % (c.pid, proc["python"])
        assert lines[1].startswith("memprof-bpf names: ")
        assert "hint: `del f` frees " in out


def test_names_while_a_cell_sleeps(tmp_path):
    """A cell allocates, then sleeps: names answers meanwhile, with the
    running cell's number from the history."""
    state = tmp_path / "state"
    state.mkdir()
    with notebook(state) as (c, nb):
        run(c, nb, "import numpy as np, time")
        msg = c.kc.execute("big = np.ones(3_000_000)\ntime.sleep(60)")
        try:
            def found():
                return "big" in rows_of(c.pid)[1]
            assert wait_for(found, timeout=30)
            proc, rows = rows_of(c.pid)
            assert proc["complete"], proc
            assert near(rows["big"]["exclusive_bytes"], 24_000_000)
            assert rows["big"]["cell"] == "In [2]", rows["big"]
        finally:  # nbclient's manager and client are async ones
            run_sync(c.km.interrupt_kernel)()
            run_sync(c.kc.get_shell_msg)(timeout=30)
        del msg


SCRIPT = """
import time
class P:
    def __init__(self):
        self.blob = bytearray(2_000_000)
        self.name = "p"
class S:
    __slots__ = ("x", "y")
    def __init__(self):
        self.x = bytes(1_500_000)
        self.y = None
blob = bytes(3_000_000)
p = P()
s = S()
floats = [float(i) for i in range(100_000)]
nested = {"a": [bytes(600_000) for _ in range(2)]}
alias = nested
print("ready", flush=True)
time.sleep(120)
"""

PLAIN = [
    ("3.8", ["/root/.pyenv/versions/3.8.18/bin/python3"]),
    ("3.11", ["/usr/bin/python3.11"]),
    ("3.13", ["/root/.pyenv/versions/3.13.0/bin/python3"]),
    ("3.14", ["chroot", "SID", "python3.14"]),
    ("3.15", ["chroot", "SID", "python3.15"]),
]


@pytest.mark.parametrize("version,argv", PLAIN, ids=[p[0] for p in PLAIN])
def test_names_of_a_script(version, argv, request):
    """Exact sizes of what a plain script's globals hold, per version."""
    if argv[0] == "chroot":
        argv = ["chroot", request.getfixturevalue("sid_root")] + argv[2:]
    elif not os.path.exists(argv[0]):
        pytest.skip("%s is not installed" % argv[0])
    p = subprocess.Popen(argv + ["-c", SCRIPT], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        proc, rows = rows_of(p.pid, None, "--min-bytes", "100000")
        assert proc["python"].startswith(version), proc
        assert rows["blob"]["bytes"] == 3_000_033  # bytes: 33 B header
        assert rows["blob"]["exclusive_bytes"] == 3_000_033
        assert rows["blob"]["type"] == "bytes"
        # A list of 100,000 floats: its array and 24 B a float.
        assert rows["floats"]["exclusive_bytes"] >= 100_000 * (24 + 8)
        assert near(rows["floats"]["exclusive_bytes"], 100_000 * 32, 0.05)
        # An instance attribute and a slot are reached.
        assert 2_000_000 < rows["p"]["exclusive_bytes"] < 2_001_000
        assert 1_500_033 <= rows["s"]["exclusive_bytes"] < 1_501_000
        # Two names for one dict: both reach it, neither frees it alone.
        for name, other in (("nested", "alias"), ("alias", "nested")):
            assert near(rows[name]["bytes"], 1_200_066), rows[name]
            assert rows[name]["exclusive_bytes"] == 0
            assert rows[name]["shared_with"] == [other]
    finally:
        p.kill()
        p.wait()


def test_names_with_an_agent(tmp_path):
    """A kernel the agent traces: blocks are the agent's, cells its own,
    and the process's live bytes are given."""
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, MEMPROF_BPF_STATE_DIR=str(state))
    with agent(tmp_path), notebook(state) as (c, nb):
        assert wait_for(lambda: (state / ("%d.json" % c.pid)).exists(),
                        timeout=30)
        run(c, nb, "import numpy as np")
        run(c, nb, "held = np.ones(3_000_000)")
        proc, rows = rows_of(c.pid, env)
        assert not proc["estimated"], proc
        assert proc["total_live_bytes"] >= 24_000_000
        r = rows["held"]
        assert r["cell"] == "In [2]" and r["where"], r
        # the agent's block: the array's 24 MB and malloc's header
        assert 24_000_000 <= r["exclusive_bytes"] <= 24_000_000 + 8192


def test_names_bad_input(tmp_path):
    """One line and exit 2: no such process, not a Python, a Python that
    has no __main__ yet, a bad flag."""
    code, out, err = names(999_999_999)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    code, out, err = names(os.getpid(), "--budget", "lots")
    assert code == 2 and err == ("memprof-bpf: names: --budget wants a "
                                 "number from 0.01 to 3600, not 'lots'\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        code, out, err = names(sleeper.pid)
        assert code == 2 and err == ("memprof-bpf: names: pid %d is not a "
                                     "Python process\n" % sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    # A Python stopped at its exec: its runtime exists, __main__ not yet.
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME: stop at exec
        os.execv("/usr/bin/python3.11", ["python3.11", "-c", "pass"])
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        code, out, err = names(pid)
        assert code == 2 and err == (
            "memprof-bpf: names: pid %d has no __main__ module yet (Python "
            "is starting)\n" % pid), err
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


EXITING = """
import sys
xs = [[i] for i in range(3_000_000)]   # 3 million lists, each held twice
ys = list(xs)
print("ready", flush=True)
sys.stdin.read()
"""


def test_names_of_a_process_that_exits_during_the_read():
    """The target exits while its objects are read: either one line and
    exit 2, or rows marked partial, never a figure shown as whole."""
    p = subprocess.Popen(["/usr/bin/python3.11", "-c", EXITING],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready"
    n = subprocess.Popen([AGENT, "names", "--pid", str(p.pid), "--budget",
                          "600", "--format", "json", "-n", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    p.kill()  # a zombie until names is done: reads fail, kill(0) works
    try:
        out, err = n.communicate(timeout=120)
    finally:
        p.wait()
    if n.returncode == 2:
        assert out == "" and err.count("\n") == 1, err
        return
    assert n.returncode == 0, err
    doc = json.loads(out)[0]
    assert not doc["complete"], doc["notes"]
    assert any("exited" in note for note in doc["notes"]), doc["notes"]
    assert all(not r["complete"] for r in doc["names"]
               if r["name"] in ("xs", "ys")), doc["names"]


def test_help_and_root(tmp_path):
    r = subprocess.run([AGENT, "names", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith(
        "usage: memprof-bpf names")
    r = subprocess.run([sys.executable, "-c", (
        "import os, sys; os.setuid(65534); "
        "os.execv(%r, [%r, 'names', '--pid', '1'])" % (AGENT, AGENT))],
        capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith(
        "memprof-bpf: names: must run as root"), r.stderr
    assert ROOT
