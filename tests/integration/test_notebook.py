"""Notebook cells, end to end: Debian's ipykernel started by nbclient,
traced with --comm ipykernel, per-cell figures read from the state file the
agent publishes for %memprof and from the kernel's exit snapshot. The same
on ipykernel 7 under Debian unstable's python3.14 and python3.15, a kernel
in another root (`chroot`), as a JupyterHub spawner would start it, and
as pid 1 of its own PID namespace (`unshare --pid`)."""
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess

import pytest

from conftest import AGENT, load, wait_for

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NOTEBOOK = os.path.join(ROOT, "tests", "notebooks", "cells.ipynb")
PYTHONPATH = os.path.join(ROOT, "python")
MiB = 1 << 20


def near(value, want, tol=0.05):
    return abs(value - want) <= tol * want


@contextlib.contextmanager
def agent(tmp_path, sid=None, flags=()):
    state = pathlib.Path(sid.host("state")) if sid else tmp_path / "state"
    env = dict(os.environ, MEMPROF_BPF_STATE_DIR=str(state))
    a = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D",
                          str(tmp_path), "--comm", "ipykernel", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        assert wait_for(lambda: (state / "agent.pid").exists()), \
            a.stderr.read()
        yield a, state
    finally:
        a.send_signal(signal.SIGINT)
        a.wait(120)  # a hang guard: its exit writes every snapshot


@contextlib.contextmanager
def jupyter_env(**kw):
    """os.environ with kw while a kernel starts (where jupyter_client looks
    for kernel specs)."""
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def wrapped_spec(state, wrapper):
    """A kernel spec "wrapped" starting Debian's python3 kernel under
    wrapper (a command that forks it, such as unshare --fork), next to
    state; the JUPYTER_PATH that finds it."""
    where = state.parent / "jupyter"
    spec = where / "kernels" / "wrapped"
    spec.mkdir(parents=True, exist_ok=True)
    argv = list(wrapper) + ["/usr/bin/python3.11", "-m", "ipykernel_launcher",
                            "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "wrapped", "language": "python"}))
    return str(where)


def only_child(pid):
    """The one child of process pid (the kernel a wrapper forked), once
    there is one."""
    path = "/proc/%d/task/%d/children" % (pid, pid)

    def child():
        with open(path) as f:
            kids = f.read().split()
        return int(kids[0]) if len(kids) == 1 else None
    found = wait_for(child, 20)
    assert found, "%d forked no kernel" % pid
    return found


@contextlib.contextmanager
def kernel(state, extension=False, nb=None, sid=None, wrapper=None,
           spec=None):
    """A real ipykernel (Debian's python3, or sid's in its root) run cell by
    cell by nbclient; state: where the agent publishes (the extension looks
    for it there); nb: the notebook (default tests/notebooks/cells.ipynb);
    wrapper: a command that forks Debian's kernel (c.pid: its child);
    spec: (JUPYTER_PATH, name) of another kernel spec of Debian's python3."""
    if nb is None:
        nb = nbformat.read(NOTEBOOK, as_version=4)
    if extension:
        nb.cells.insert(0, nbformat.v4.new_code_cell(
            "%load_ext memprof_bpf"))
    env = dict(os.environ, PYTHONPATH=PYTHONPATH,
               MEMPROF_BPF_STATE_DIR=str(state),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    where, name = {}, "python3"
    if sid:
        env.update(PYTHONPATH=sid.inside + "/python",
                   MEMPROF_BPF_STATE_DIR=sid.inside + "/state")
        where = dict(JUPYTER_PATH=sid.host("jupyter"))
        name = "sid"
    elif wrapper:
        where = dict(JUPYTER_PATH=wrapped_spec(state, wrapper))
        name = "wrapped"
    elif spec:
        where, name = dict(JUPYTER_PATH=spec[0]), spec[1]
    c = nbclient.NotebookClient(nb, kernel_name=name, timeout=120,
                                startup_timeout=60)
    with jupyter_env(**where), c.setup_kernel(env=env):
        c.pid = c.km.provisioner.process.pid
        c.comm = sid.python if sid else "python3"
        if wrapper:
            c.pid, c.comm = only_child(c.pid), "python3.11"
        yield c, nb


def run_cell(c, nb, i):
    """Execute cell i; its printed code filename (last output line)."""
    cell = c.execute_cell(nb.cells[i], i)
    text = "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream")
    return text.strip().split()[-1] if text.strip() else None


def state_of(state, pid):
    try:
        with open(state / ("%d.json" % pid)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs_of(doc, file):
    return [r for r in doc["cells"] if r["file"] == file]


def run_notebook(state, c, nb, first):
    """Run the test cells (from index first); their filenames, in order."""
    assert wait_for(lambda: state_of(state, c.pid) is not None, 20), \
        "kernel %d never published" % c.pid
    return [run_cell(c, nb, i) for i in range(first, len(nb.cells))]


def check_cells(state, pid, files):
    _, keep1, tmp, _, call, keep2 = files
    assert keep1 == keep2  # same source, same ipykernel filename

    def settled():  # a file may be published between the re-run's
        doc = state_of(state, pid)  # new array and the old one's free
        runs = doc and runs_of(doc, keep2)
        return runs and len(runs) == 2 and runs[0]["live_bytes"] < MiB \
            and near(runs[1]["live_bytes"], 128 * MiB)
    assert wait_for(settled, 10), [(r["label"], r["file"], r["live_bytes"])
                                   for r in state_of(state, pid)["cells"]]
    doc = state_of(state, pid)
    first, again = runs_of(doc, keep1)
    # Retained now: the re-run replaced the first run's array.
    assert first["live_bytes"] < MiB
    assert near(again["live_bytes"], 128 * MiB)
    assert near(first["peak_above_start"], 128 * MiB)
    assert again["started_at"] > first["started_at"]
    # The 256 MiB temporary: gone, but it drove the process peak.
    t, = runs_of(doc, tmp)
    assert t["live_bytes"] < MiB
    assert near(t["peak_above_start"], 256 * MiB)
    assert near(t["bytes_at_process_peak"], 256 * MiB)
    assert doc["peak_cell"] == t["label"]
    # make() was defined in the cell before; the cell that called it owns
    # the bytes.
    b, = runs_of(doc, call)
    assert near(b["live_bytes"], 50_000_001)
    return doc


def marked(state, pid):
    """Has the agent seen a cell marker of this kernel (In [N])?"""
    try:
        with open(os.path.join(state, "%d.json" % pid)) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return any(r["label"].startswith("In [") for r in doc["cells"])


def run_until_marked(c, nb, state, pid):
    """Load the extension, then run empty cells until the agent has its
    markers attached (loading waits 1 s for that, a busy machine may
    need longer): from then on every cell is marked."""
    source = "%load_ext memprof_bpf"
    for _ in range(100):
        nb.cells.append(nbformat.v4.new_code_cell(source))
        c.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        if wait_for(lambda: marked(state, pid), 0.5):
            return
        source = "pass"
    raise AssertionError("no cell marker of kernel %d seen" % pid)


def test_cells_without_the_extension(tmp_path, sid):
    with agent(tmp_path, sid) as (a, state), \
            kernel(state, sid=sid) as (c, nb):
        files = run_notebook(state, c, nb, 0)
        doc = check_cells(state, c.pid, files)
        # No markers: a run is labelled by its hash filename.
        for r in doc["cells"][:-1]:
            if r["label"] == "(before attach)":
                continue  # found at exec, attached a moment later
            assert r["execution_count"] is None
            assert r["label"] == os.path.basename(r["file"])
        assert doc["cells"][-1]["label"] == "(outside cells)"
        pid, comm = c.pid, c.comm
    snap = tmp_path / ("memprof-%s-%d-exit.json.gz" % (comm, pid))
    assert wait_for(snap.exists, 20), a.stderr.read()
    peak = load(snap)
    tmp_run = [r for r in peak["peak"]["cells"] if r["file"] == files[2]]
    assert peak["peak_cell"] == tmp_run[0]["label"]
    assert near(tmp_run[0]["live_bytes"], 256 * MiB)


def marker_library():
    return os.path.exists(os.path.join(PYTHONPATH, "memprof_bpf",
                                       "_memprof_markers.so"))


def test_cells_with_the_extension(tmp_path, sid):
    if not marker_library():
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    with agent(tmp_path, sid) as (a, state), \
            kernel(state, sid=sid) as (c, nb):
        assert wait_for(lambda: state_of(state, c.pid) is not None, 20)
        # %load_ext is In [1]; on a busy machine the agent may attach the
        # markers after its 1 s wait, and empty cells run until it has.
        # (nbclient files a cell's outputs under its index in the client's
        # notebook: the loading cells go after the notebook's own.)
        body = len(nb.cells)
        run_until_marked(c, nb, str(state), c.pid)
        k = len(nb.cells) - body
        files = [run_cell(c, nb, i) for i in range(body)]
        doc = check_cells(state, c.pid, files)
        # Cell i of the notebook file is In [k + i + 1]; its first line.
        for i in (1, 2, 4):
            r = runs_of(doc, files[i])[0]
            n = k + i + 1
            assert (r["label"], r["execution_count"]) == ("In [%d]" % n, n)
            assert r["source_head"] == nb.cells[i].source.splitlines()[0] \
                .strip()
            assert r["finished_at"] >= r["started_at"]
        again = runs_of(doc, files[5])[1]
        assert again["label"] == "In [%d]" % (k + 6)
        # The cell that loaded the extension is named by its end marker,
        # when the markers were attached before it ended.
        if k == 1:
            load = [r for r in doc["cells"] if r["label"] == "In [1]"]
            assert [r["source_head"] for r in load] == \
                ["%load_ext memprof_bpf"]


def test_two_kernels_are_not_mixed(tmp_path, sid):
    # The measured cell prints nothing: printed text waits in the kernel's
    # buffers and queues, counted in the cell (CI saw 656 such bytes in
    # python3.14's kernel). Its code file goes to a name bound beforehand
    # (a value replaced, no allocation), printed by the next cell.
    code = "blob = bytearray({n})\nf = sys._getframe().f_code.co_filename"
    with agent(tmp_path, sid) as (a, state), \
            kernel(state, sid=sid) as (c1, nb1), \
            kernel(state, sid=sid) as (c2, nb2):
        for c, nb in ((c1, nb1), (c2, nb2)):
            assert wait_for(lambda: state_of(state, c.pid), 20)
            run_cell(c, nb, 0)
            nb.cells[1].source = "blob = f = None"
            run_cell(c, nb, 1)
        n1, n2 = 64 * MiB, 96 * MiB
        nb1.cells[2].source = code.format(n=n1)
        nb2.cells[2].source = code.format(n=n2)
        run_cell(c1, nb1, 2)
        run_cell(c2, nb2, 2)
        nb1.cells[3].source = nb2.cells[3].source = "print(f)"
        f1 = run_cell(c1, nb1, 3)
        f2 = run_cell(c2, nb2, 3)

        def have(c, f):
            doc = state_of(state, c.pid)
            return doc and runs_of(doc, f)
        assert wait_for(lambda: have(c1, f1) and have(c2, f2), 10)
        r1, = runs_of(state_of(state, c1.pid), f1)
        r2, = runs_of(state_of(state, c2.pid), f2)
        assert r1["live_bytes"] == n1 + 1 and r2["live_bytes"] == n2 + 1
        assert not runs_of(state_of(state, c1.pid), f2)
        assert not runs_of(state_of(state, c2.pid), f1)


# unshare's child is pid 1 of a new PID namespace (as a container's or a
# JupyterHub spawner's kernel): os.getpid() is not the pid the agent knows.
PIDNS = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]


def run_source(c, nb, source):
    """Run one more cell; its stdout."""
    nb.cells.append(nbformat.v4.new_code_cell(source))
    cell = c.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream")


def test_kernel_in_its_own_pid_namespace(tmp_path):
    if not marker_library():
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    with agent(tmp_path) as (a, state), \
            kernel(state, wrapper=PIDNS) as (c, nb):
        assert wait_for(lambda: state_of(state, c.pid) is not None, 20), \
            "kernel %d never published" % c.pid
        body = len(nb.cells)
        run_until_marked(c, nb, str(state), c.pid)
        k = len(nb.cells) - body
        files = [run_cell(c, nb, i) for i in range(body)]
        # ipykernel names cell files by the pid in the namespace.
        nspid = int(re.search(r"/ipykernel_(\d+)/", files[0]).group(1))
        assert nspid != c.pid
        doc = check_cells(state, c.pid, files)
        for i in (1, 2, 4):
            r = runs_of(doc, files[i])[0]
            assert r["label"] == "In [%d]" % (k + i + 1)
        # The extension finds the agent and asks it about this kernel.
        out = run_source(c, nb, "import memprof_bpf\n"
                         "print(memprof_bpf.agent_running())")
        assert out.split() == ["True"], out
        out = run_source(c, nb, "%memprof --sort time")
        assert out.startswith("memprof-bpf: pid %d, live " % c.pid), out
        keep = [line for line in out.splitlines()
                if line.startswith("In [%d] " % (k + 6))]
        assert len(keep) == 1 and "128.0 MiB" in keep[0], out
        # The file it falls back on: the one the agent names it by.
        out = run_source(c, nb, "print(memprof_bpf.agent.own_pid())\n"
                         "print(memprof_bpf.report(\n"
                         "    memprof_bpf.agent.own_pid(), 'time'))")
        assert out.startswith("%d\nmemprof-bpf: pid %d, live " %
                              (c.pid, c.pid)), out
        assert "In [%d] " % (k + 6) in out, out
        rows = json.loads(run_source(c, nb, (
            "import json\n"
            "rows = memprof_bpf.big_objs(n=None, min_bytes=1 << 20)\n"
            "print(json.dumps([[r.name, r.exclusive_bytes, r.cell]\n"
            "                  for r in rows] + [rows.estimated]))")))
        assert rows[-1] is False, rows
        (name, size, cell), = [r for r in rows[:-1] if r[0] == "keep"]
        assert near(size, 128 * MiB) and cell == "In [%d]" % (k + 6), rows


def test_kernelspec_kernel_records_in_process(tmp_path):
    """memprof-bpf kernelspec install: its kernels start with the recorder
    waiting; --comm ipykernel adopts its ring (no allocator uprobes) and
    the cells come out as on the uprobe path."""
    prefix = tmp_path / "prefix"
    r = subprocess.run([AGENT, "kernelspec", "install", "--prefix",
                        str(prefix), "--name", "memprof-test", "--python",
                        "/usr/bin/python3.11"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    where = prefix / "share" / "jupyter"
    spec = json.loads((where / "kernels" / "memprof-test" /
                       "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (memprof)"
    assert spec["env"]["MEMPROF_RECORDER"] == "wait"
    assert os.path.exists(spec["env"]["LD_PRELOAD"])
    with agent(tmp_path, flags=["-v"]) as (a, state), \
            kernel(state, spec=(str(where), "memprof-test")) as (c, nb):
        files = run_notebook(state, c, nb, 0)
        check_cells(state, c.pid, files)
        pid = c.pid
    err = a.stderr.read()
    assert "pid %d: reading its in-process recorder" % pid in err, err
    assert re.search(r"tracing pid %d .*allocator in the in-process "
                     r"recorder" % pid, err), err
    snap = load(tmp_path / ("memprof-python3.11-%d-exit.json.gz" % pid))
    assert snap["dropped_events"] == 0
    tmp_run = [r for r in snap["peak"]["cells"] if r["file"] == files[2]]
    assert snap["peak_cell"] == tmp_run[0]["label"]
    assert near(tmp_run[0]["live_bytes"], 256 * MiB)
