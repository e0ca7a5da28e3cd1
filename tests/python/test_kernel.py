"""The extension in a real ipykernel (Debian's python3 via jupyter_client):
it loads untraced and costs nothing, its cell names are the cells' own
co_filename, and %memprof prints inside the notebook."""
import json
import os
import subprocess

import pytest

from conftest import KERNEL_PYTHON, PYDIR

jupyter_client = pytest.importorskip("jupyter_client")

GRAB = "__fn = sys._getframe().f_code.co_filename\n"
CHECK = "print(json.dumps([__fn, memprof_bpf.last_cell.code_filename, " \
        "memprof_bpf.last_cell.execution_count]))"


class Kernel:
    def __init__(self, km, kc):
        self.km, self.kc = km, kc

    def run(self, code, stop_on_error=True):
        """(status, execution_count, stdout text, error name) of a cell.
        stop_on_error=False for a cell that raises on purpose: otherwise
        ipykernel aborts what it receives in the moment after the error,
        and on a busy machine the next cell's request can fall in it."""
        out = []
        err = []

        def hook(msg):
            c = msg["content"]
            if msg["msg_type"] == "stream" and c["name"] == "stdout":
                out.append(c["text"])
            elif msg["msg_type"] == "execute_result":
                out.append(c["data"]["text/plain"] + "\n")
            elif msg["msg_type"] == "error":
                err.append(c["ename"])
        reply = self.kc.execute_interactive(code, output_hook=hook,
                                            timeout=30,
                                            stop_on_error=stop_on_error)
        return (reply["content"]["status"],
                reply["content"].get("execution_count"), "".join(out),
                err[0] if err else None)

    def value(self, code):
        status, _, out, err = self.run(code)
        assert status == "ok", err
        return json.loads(out.splitlines()[-1])


@pytest.fixture(scope="module")
def kernel(library, tmp_path_factory):
    """One kernel for the module: a kernelspec pinned to Debian's python3,
    python/ on its path, a private IPython dir and state dir."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "memprof-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [KERNEL_PYTHON, "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "memprof-bpf tests", "language": "python"}))
    state = root / "state"
    state.mkdir()
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root)
    try:
        km = jupyter_client.KernelManager(kernel_name="memprof-test")
        km.start_kernel(env=dict(
            os.environ, PYTHONPATH=PYDIR, IPYTHONDIR=str(root / "ipython"),
            MEMPROF_BPF_STATE_DIR=str(state),
            PYDEVD_DISABLE_FILE_VALIDATION="1"))
    finally:
        if saved is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = saved
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        k = Kernel(km, kc)
        k.state = state
        status, _, out, err = k.run("%load_ext memprof_bpf")
        assert (status, out, err) == ("ok", "", None)
        yield k
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_loads_untraced_and_hooks_stay_idle(kernel):
    status, n, out, err = kernel.run(
        "import json, sys, memprof_bpf\n"
        "from memprof_bpf import markers\n"
        "print(json.dumps([markers.Markers.load().traced(), "
        "repr(memprof_bpf.last_cell), memprof_bpf.force]))")
    assert (status, err) == ("ok", None)
    traced, last, force = json.loads(out)
    assert (traced, force) == (0, False)
    # The hooks ran (this cell is last_cell) but computed nothing.
    assert last == ("Cell(execution_count=%d, code_filename=None, "
                    "source_head=None, success=None)" % n)
    status, _, out, _ = kernel.run(
        "print(memprof_bpf.last_cell.execution_count, "
        "len(get_ipython().events.callbacks['pre_run_cell']))")
    assert out.split() == [str(n + 1), "1"]


def test_failing_cell_is_recorded(kernel):
    status, n, _, err = kernel.run("__c = memprof_bpf.last_cell\n1 / 0",
                                   stop_on_error=False)
    assert (status, err) == ("error", "ZeroDivisionError")
    assert kernel.value("print(json.dumps([__c.execution_count, "
                        "__c.success]))") == [n, False]


def test_reload_does_not_hook_twice(kernel):
    status, _, out, err = kernel.run("%reload_ext memprof_bpf")
    assert (status, out, err) == ("ok", "", None)
    assert kernel.value(
        "print(json.dumps([len(get_ipython().events.callbacks[e]) "
        "for e in ('pre_run_cell', 'post_run_cell')]))") == [1, 1]


CELLS = [
    # plain code
    "import json, sys, memprof_bpf\n" + GRAB + CHECK,
    # blank lines, a line magic, unicode
    "\n\n%time __y = '\u00e9t\u00e9 \u20ac'\n" + GRAB + CHECK,
    # top-level await: run through run_cell_async, not run_cell
    "import asyncio\nawait asyncio.sleep(0)\n" + GRAB + CHECK,
    # a cell magic runs its body as a nested cell with its own name
    "%%capture __cap\n" + GRAB + "__n = memprof_bpf.last_cell.code_filename",
]


@pytest.mark.parametrize("code", CELLS, ids=["plain", "magic", "await",
                                            "cell-magic"])
def test_code_filename_is_the_cells_co_filename(kernel, code):
    kernel.run("memprof_bpf.force = True")
    try:
        status, n, out, err = kernel.run(code)
        assert (status, err) == ("ok", None)
        if code.startswith("%%capture"):
            fn, computed = kernel.value("print(json.dumps([__fn, __n]))")
            count = n
        else:
            fn, computed, count = json.loads(out.splitlines()[-1])
    finally:
        kernel.run("memprof_bpf.force = False")
    tmp = os.environ.get("TMPDIR", "/tmp").rstrip("/")
    assert fn.startswith("%s/ipykernel_" % tmp) and fn.endswith(".py")
    assert computed == fn
    assert count == n


def test_same_source_same_name(kernel):
    kernel.run("memprof_bpf.force = True")
    try:
        code = "__v = memprof_bpf.last_cell.code_filename\n" + \
            "print(json.dumps([__v, sys._getframe().f_code.co_filename]))"
        a = kernel.value(code)
        b = kernel.value(code)
    finally:
        kernel.run("memprof_bpf.force = False")
    assert a == b and a[0] == a[1]


def test_memprof_magic_in_the_notebook(kernel):
    status, _, out, err = kernel.run("%memprof")
    pid = kernel.km.provisioner.process.pid
    assert (status, err) == ("ok", None)
    assert out == ("memprof-bpf: no agent is tracing this kernel (pid %d); "
                   "run: sudo memprof-bpf --comm ipykernel\n" % pid)
    agent = subprocess.Popen(["sleep", "60"])
    try:
        doc = {"pid": pid, "agent_pid": agent.pid,
               "updated_at": "2026-11-23T22:50:01.000Z",
               "live_bytes": 3 << 20, "peak_bytes": 8 << 20,
               "peak_at": None, "peak_cell": "In [2]",
               "cells": [{"label": "In [2]", "execution_count": 2,
                          "file": "/tmp/x.py", "source_head": "x = f()",
                          "started_at": "2026-11-23T22:50:00.000Z",
                          "finished_at": "2026-11-23T22:50:00.500Z",
                          "live_bytes": 2 << 20, "peak_bytes_during": 8 << 20,
                          "bytes_at_process_peak": 6 << 20, "count": 5}]}
        (kernel.state / ("%d.json" % pid)).write_text(json.dumps(doc))
        status, _, out, err = kernel.run("%memprof --sort peak --top 5")
    finally:
        agent.kill()
        agent.wait()
    assert (status, err) == ("ok", None)
    lines = out.splitlines()
    assert lines[0].startswith("memprof-bpf: pid %d, live 3.0 MiB, "
                               "high-water mark 8.0 MiB during In [2]" % pid)
    assert lines[2].split() == ["In", "[2]", "x", "=", "f()", "2.0", "MiB",
                                "8.0", "MiB", "75.0%", "5", "0.50", "s"]
    status, _, out, err = kernel.run("%memprof --sort size")
    assert out.startswith("%memprof: argument --sort: invalid choice")
    assert len(out.splitlines()) == 1 and status == "ok"
