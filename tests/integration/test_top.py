"""The live top view, driven for real: the agent runs in a tmux pane (a
terminal, so the view opens) with --comm ipykernel, a real Jupyter kernel
(Debian's ipykernel via nbclient, with the memprof_bpf extension) runs
cells, and the test reads the screen with capture-pane and presses keys
with send-keys."""
import contextlib
import os
import re
import shutil
import subprocess

import pytest

from conftest import AGENT, load, wait_for

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHONPATH = os.path.join(ROOT, "python")
SOCKET = "memprof-top-test-%d" % os.getpid()  # our own tmux server
KEEP = "keep = bytearray(128 << 20)"
TEMP = "tmp = bytearray(256 << 20); del tmp"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux not installed")


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET] + list(args), check=True,
                          capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", "top")


def keys(*k):
    tmux("send-keys", "-t", "top", *k)


def shows(pattern, timeout=15):
    """The screen once it matches pattern (a regex), else fail with it."""
    found = wait_for(lambda: re.search(pattern, screen(), re.M),
                     timeout, 0.2)
    assert found, "no %r on screen:\n%s" % (pattern, screen())
    return screen()


def row(text, label):
    """The screen line of a cell row."""
    for line in text.splitlines():
        if re.match(r"^[ >\u25b6] %s\s" % re.escape(label), line):
            return line
    raise AssertionError("no row %s:\n%s" % (label, text))


@contextlib.contextmanager
def top_view(tmp_path):
    """The agent in a 160x45 tmux pane; its exit code lands in a file."""
    state = tmp_path / "state"
    cmd = ("MEMPROF_BPF_STATE_DIR=%s LANG=C.UTF-8 %s -i 0.5 -D %s "
           "--comm ipykernel; echo $? > %s/exit; sleep 600"
           % (state, AGENT, tmp_path, tmp_path))
    tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "45", cmd)
    try:
        assert wait_for(lambda: (state / "agent.pid").exists(), 20), screen()
        yield state
    finally:
        if not (tmp_path / "exit").exists():
            keys("q")
            wait_for(lambda: (tmp_path / "exit").exists(), 20)
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"],
                       capture_output=True)


@contextlib.contextmanager
def kernel(state):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s)
                for s in ("%load_ext memprof_bpf", KEEP, TEMP)]
    env = dict(os.environ, PYTHONPATH=PYTHONPATH,
               MEMPROF_BPF_STATE_DIR=str(state),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    c = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                startup_timeout=60)
    with c.setup_kernel(env=env):
        c.pid = c.km.provisioner.process.pid
        yield c, nb


def kernel_name(c):
    """The view's short name: kernel-<first 8 of the uuid> for Jupyter's
    kernel-<uuid>.json, else kernel:<file> (nbclient's temporary file)."""
    base = os.path.basename(c.km.connection_file)[:-len(".json")]
    m = re.match(r"kernel-([0-9a-f]{1,8})", base)
    return "kernel-" + m.group(1) if m else "kernel:" + base


def test_top_view_rows_keys_and_snapshots(tmp_path):
    if not os.path.exists(os.path.join(PYTHONPATH, "memprof_bpf",
                                       "_memprof_markers.so")):
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    with top_view(tmp_path) as state, kernel(state) as (c, nb):
        assert wait_for(lambda: (state / ("%d.json" % c.pid)).exists(), 20)
        for i in range(len(nb.cells)):
            c.execute_cell(nb.cells[i], i)

        # Cells view (the default), sorted by live bytes: In [2] holds
        # its 128 MiB; In [3]'s 256 MiB temporary is gone. Every cell that
        # has ended is done.
        text = shows(r"^  In \[3\] .* done ")
        text = shows(r"^  In \[2\] .*128\.0 MiB .* done ")
        assert "1 process" in text.splitlines()[0]
        assert "dropped 0" in text.splitlines()[0]
        assert "PID %d  %s (python3)" % (c.pid, kernel_name(c)) in text
        assert re.search(r"high-water \d+\.\d MiB in In \[3\]", text)
        keep = row(text, "In [2]")
        assert KEEP in keep
        temp = row(text, "In [3]")
        assert re.search(r"\s\d+ B\s", temp), temp  # nothing retained
        # Live bytes order the rows. "(outside cells)" is the kernel's own
        # machinery (imports, zmq, history: 45-55 MiB, varying by run):
        # In [2]'s 128 MiB leads it by a margin no run comes near.
        lines = text.splitlines()
        first = next(i for i, s in enumerate(lines) if "SOURCE" in s) + 1
        assert lines[first] == keep, "In [2] leads by live bytes"

        # P: at the high-water mark In [3]'s temporary leads.
        keys("P")
        text = shows(r"AT PEAK")
        lines = text.splitlines()
        top = lines[next(i for i, s in enumerate(lines) if "SOURCE" in s)
                    + 1]
        assert re.match(r"^. In \[3\] +256\.0 MiB", top), text
        keys("P")
        shows(r"^  CELL +LIVE")

        # Enter on the selected (first) row: that cell's stacks.
        keys("Enter")
        text = shows(r"of In \[2\]")
        assert re.search(r"^ +128\.0 MiB +1  In \[2\] ", text, re.M), text
        assert re.search(r"^ +In \[2\]:1 <module>$", text, re.M), text

        # s: every stack; p: the processes; c: back to the cells.
        keys("s")
        text = shows(r"live now \(P\)$")  # no "of In [2]" after it
        assert "ALLOCATED BY" in text
        keys("p")
        text = shows(r"HIGH-WATER")
        name = kernel_name(c)[:16]  # its column may cut it
        assert re.search(r"^ +%d  %s\S* python3 " % (c.pid, name), text,
                         re.M), text

        # w: a snapshot now, and the status line says where.
        keys("w")
        manual = tmp_path / ("memprof-python3-%d-manual.json.gz" % c.pid)
        text = shows(r"wrote 1 snapshot: ")
        assert str(manual) in text.splitlines()[-1]
        doc = load(manual)
        assert doc["reason"] == "manual" and doc["pid"] == c.pid
        assert any(r["label"] == "In [2]" for r in doc["current"]["cells"])

        # n: which names hold the kernel's memory, read from outside by
        # `memprof-bpf names`, sized by this agent's blocks; Esc: back.
        keys("n")
        text = shows(r"^keep +bytearray len 134217728 +128\.0 MiB")
        assert "pid %d (python 3.11" % c.pid in text, text
        assert "memprof-bpf names: " in text
        assert re.search(r"^keep .* In \[2\]", text, re.M), text
        keys("Escape")
        shows(r"^ +PID +")

        # q: the view closes, the final snapshot is written, exit code 0.
        keys("q")
        code = tmp_path / "exit"  # the shell creates it, then writes
        assert wait_for(lambda: code.exists() and code.read_text(), 30), \
            screen()
        assert code.read_text().strip() == "0"
        end = tmp_path / ("memprof-python3-%d-end.json.gz" % c.pid)
        assert end.exists()
        text = screen()
        assert "cells of pid %d (python3)" % c.pid in text, text
        assert "snapshot: %s" % end in text.replace("\n", "")
