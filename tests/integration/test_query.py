"""The agent's query socket (<state dir>/agent.sock), end to end: real
processes under the agent ask about their own memory through
python/memprof_bpf/agent.py, the client big_objs() uses; root, untraced,
asks about a traced process by naming its pid (as memprof-bpf names does
through user/server/ask.c); other untraced and impersonating callers are
refused; a notebook kernel's buffer is reported with its cell's label."""
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile

import pytest

from conftest import AGENT, wait_for
from test_notebook import run_until_marked

try:
    import nbclient
    import nbformat
except ImportError:  # only the notebook test needs them
    nbclient = nbformat = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHONPATH = os.path.join(ROOT, "python")
PYTHON = "/usr/bin/python3"
NOBODY = 65534


def client():
    """python/memprof_bpf/agent.py loaded on its own (standard library
    only), as this test process's client."""
    spec = importlib.util.spec_from_file_location(
        "memprof_agent_client",
        os.path.join(PYTHONPATH, "memprof_bpf", "agent.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def open_dir():
    """A directory every user can reach (pytest's tmp_path is root's
    0700): the state directory and scripts a non-root command reads."""
    d = tempfile.mkdtemp(prefix="memprof-query-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def line_of(source, marker):
    """1-based line of the only line holding marker."""
    lines = [n + 1 for n, text in enumerate(source.splitlines())
             if marker in text]
    assert len(lines) == 1, marker
    return lines[0]


def run_traced(directory, source, env=None, timeout=120):
    """Run source as a script under the agent (state in directory/state);
    the script prints one JSON document, returned with the agent's run."""
    script = os.path.join(directory, "script.py")
    with open(script, "w") as f:
        f.write(source)
    os.chmod(script, 0o644)
    env = dict(env or os.environ,
               MEMPROF_BPF_STATE_DIR=os.path.join(directory, "state"))
    r = subprocess.run([AGENT, "-D", directory, "--", PYTHON, script,
                        PYTHONPATH], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r


# ---- a script asking about its own buffers ----------------------------------

OWN_BUFFERS = r'''
import ctypes, json, os, socket, sys, time
sys.path.insert(0, sys.argv[1])
from memprof_bpf import agent
import numpy as np


def make():
    buf = bytearray(10_000_000)  # BYTEARRAY
    arr = np.empty(8_000_000)  # NUMPY
    return buf, arr


def address_of(b):
    view = (ctypes.c_char * 1).from_buffer(b)
    a = ctypes.addressof(view)
    del view  # or the bytearray could not be freed
    return a


def raw(data, end=True):
    """Send data as it is (then end it); the agent's reply, decoded."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(agent.socket_path())
        try:
            s.sendall(data)
            if end:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # refused before all was read
            pass
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


r = {"pid": os.getpid()}
r["first"] = agent.live_bytes()
r["again"] = agent.live_bytes()
buf, arr = make()
ab, aa = address_of(buf), arr.__array_interface__["data"][0]
r["ab"], r["aa"] = ab, aa
r["live"] = agent.query("live")
r["blocks"] = agent.lookup([ab, ab + 4_999_999, ab + 10_000_000,
                            ab + 10_000_001, aa, aa + 12_345,
                            aa + 63_999_999, aa + 64_000_000])
before = agent.live_bytes()
del buf
r["buf_freed"] = before - agent.live_bytes()
r["after_buf"] = agent.lookup([ab + 5_000_000, aa + 8])
before = agent.live_bytes()
del arr
r["arr_freed"] = before - agent.live_bytes()
r["after_arr"] = agent.lookup([aa + 32_000_000])
r["pid_ignored"] = agent.query("live", pid=1)
r["too_many"] = [agent.query("lookup", addrs=list(range(200_001))),
                 agent.last_error]
r["bad_json"] = raw(b"{op: live}\n")
r["not_ints"] = raw(b'{"op": "lookup", "addrs": [1, 2.5]}\n')
r["no_newline"] = raw(b'{"op": "live"}')
r["too_long"] = raw(b" " * (9 << 20))
r["nothing"] = raw(b"")
t0 = time.monotonic()
r["silent"] = [raw(b'{"op": ', end=False), time.monotonic() - t0]
print(json.dumps(r))
'''

BUF, ARR = 10_000_001, 64_000_000


def test_a_script_finds_its_own_buffers(open_dir):
    r, _ = run_traced(open_dir, OWN_BUFFERS)
    script = os.path.join(open_dir, "script.py")
    ba_line = line_of(OWN_BUFFERS, "# BYTEARRAY")
    np_line = line_of(OWN_BUFFERS, "# NUMPY")
    ab, aa = r["ab"], r["aa"]
    assert r["first"] == r["again"] > 0
    # CPython's bytearray(n) mallocs n + 1 bytes (a trailing NUL); NumPy's
    # data for 8,000,000 float64 is one malloc of 64,000,000 bytes.
    assert r["live"]["pid"] == r["pid"]
    assert r["live"]["live_bytes"] >= r["first"] + BUF + ARR
    assert r["live"]["peak_bytes"] >= r["live"]["live_bytes"]
    blocks = r["blocks"]
    assert len(blocks) == 8
    for b, addr in zip(blocks[:3], (ab, ab + 4_999_999, ab + 10_000_000)):
        assert b == {"addr": addr, "start": ab, "size": BUF, "kind": "block",
                     "cell": None, "file": script, "line": ba_line,
                     "function": "make",
                     "where": "script.py:%d make" % ba_line}
    for b, addr in zip(blocks[4:7], (aa, aa + 12_345, aa + 63_999_999)):
        assert b == {"addr": addr, "start": aa, "size": ARR, "kind": "block",
                     "cell": None, "file": script, "line": np_line,
                     "function": "make",
                     "where": "script.py:%d make" % np_line}
    # One past each block: malloc's own slack, nobody's block.
    assert blocks[3] is None and blocks[7] is None
    # Freed: live bytes fall by exactly the block, its addresses are free.
    assert r["buf_freed"] == BUF
    assert r["after_buf"][0] is None
    assert r["after_buf"][1]["start"] == aa
    assert r["arr_freed"] == ARR
    assert r["after_arr"] == [None]
    # A pid in the request changes nothing: the answer is the caller's.
    assert r["pid_ignored"]["pid"] == r["pid"]
    assert r["too_many"] == [
        None, "memprof-bpf agent: too many addresses (200001, at most 200000)"]
    assert r["bad_json"]["error"].startswith("bad JSON: ")
    assert r["not_ints"] == {
        "error": "addrs[1] is not a non-negative integer"}
    assert r["no_newline"]["pid"] == r["pid"]
    assert r["too_long"] == {"error": "request longer than 8388608 bytes"}
    assert r["nothing"] == {"error": "reading the request: nothing sent"}
    # A client that stops sending is cut off after 1 s.
    silent, waited = r["silent"]
    assert silent == {"error": "reading the request: timed out"}
    assert 1.0 <= waited < 3.0


# ---- who may ask ------------------------------------------------------------

@contextlib.contextmanager
def agent_tracing_a_reader(state, args=("-c", "import sys; sys.stdin.read()")):
    """The agent tracing a Python process (PYTHON args) that waits on its
    stdin (its exit snapshot next to the state directory)."""
    a = subprocess.Popen([AGENT, "--batch", "-D", os.path.dirname(state),
                          "--", PYTHON] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         env=dict(os.environ, MEMPROF_BPF_STATE_DIR=state))
    try:
        sock = os.path.join(state, "agent.sock")
        assert wait_for(lambda: is_socket(sock)), a.stderr.read()
        yield a
    finally:
        a.stdin.close()
        a.wait(30)


def is_socket(path):
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def raw_reply(path, data):
    """A refusal can come before the request is read: send what can be."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        try:
            s.sendall(data)
        except OSError:
            pass
        return json.loads(s.makefile("rb").readline())


def ask(path, request):
    """One request as JSON, the reply decoded."""
    return raw_reply(path, (json.dumps(request) + "\n").encode())


def test_a_root_process_not_traced_must_name_the_pid(open_dir, monkeypatch):
    state = os.path.join(open_dir, "state")
    sock = os.path.join(state, "agent.sock")
    # A stale socket file from an agent that died is replaced.
    os.mkdir(state, 0o755)
    with open(sock, "w") as f:
        f.write("stale")
    with agent_tracing_a_reader(state):
        st = os.lstat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o666
        assert st.st_uid == 0
        # This test process is root and not traced: it must say whom it
        # asks about (told with its pid, as an untraced root kernel is);
        # this process, or pid 1, is not traced.
        assert raw_reply(sock, b'{"op": "live"}\n') == {
            "error": 'not traced; a root client must name a "pid"',
            "pid": os.getpid()}
        assert raw_reply(
            sock, b'{"op": "lookup", "addrs": [4096], "pid": 1}\n') == {
            "error": "not traced", "pid": 1}
        assert ask(sock, {"op": "cells", "pid": os.getpid()}) == {
            "error": "not traced", "pid": os.getpid()}
        assert ask(sock, {"op": "live", "pid": "1"}) == {
            "error": '"pid" is not a positive integer'}
        monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", state)
        c = client()
        assert c.query("live") is None
        assert c.last_error == \
            'memprof-bpf agent: not traced; a root client must name a "pid"'
        assert c.own_pid() == os.getpid()
        assert c.live_bytes() is None
        assert c.lookup([4096]) is None
    assert not os.path.exists(sock)  # removed at exit
    # No agent at all: None, no exception.
    assert c.query("live") is None
    assert c.live_bytes() is None


# The traced process: a 5,000,000-byte bytearray (5,000,001 bytes malloced:
# CPython adds a NUL), its buffer's address written to argv[1] for the test.
HOLDER = r'''
import ctypes, json, os, sys


def make():
    return bytearray(5_000_000)  # HOLD


buf = make()
view = (ctypes.c_char * 1).from_buffer(buf)
addr = ctypes.addressof(view)
del view
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump({"pid": os.getpid(), "addr": addr}, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
sys.stdin.read()
'''

# An untraced client of another user: it connects as nobody.
AS_NOBODY = r'''
import json, os, socket, sys
os.setuid(%d)
with socket.socket(socket.AF_UNIX) as s:
    s.settimeout(10)
    s.connect(sys.argv[1])
    try:
        s.sendall(json.dumps({"op": "live", "pid": int(sys.argv[2])}).encode()
                  + b"\n")
    except OSError:
        pass
    print(json.dumps([os.getpid(), json.loads(s.makefile("rb").readline())]))
''' % NOBODY


@contextlib.contextmanager
def agent_tracing_a_holder(directory):
    """The agent tracing HOLDER; yields (socket, script, pid, address)."""
    state = os.path.join(directory, "state")
    script = os.path.join(directory, "hold.py")
    held = os.path.join(directory, "held.json")
    with open(script, "w") as f:
        f.write(HOLDER)
    with agent_tracing_a_reader(state, (script, held)) as a:
        assert wait_for(lambda: os.path.exists(held)), a.stderr.read()
        with open(held) as f:
            h = json.load(f)
        yield os.path.join(state, "agent.sock"), script, h["pid"], h["addr"]


def test_root_asks_about_a_traced_process(open_dir):
    line = line_of(HOLDER, "# HOLD")
    with agent_tracing_a_holder(open_dir) as (sock, script, pid, addr):
        r = ask(sock, {"op": "lookup", "pid": pid,
                       "addrs": [addr, addr + 4_999_999, addr + 5_000_001]})
        live = ask(sock, {"op": "live", "pid": pid})
        cells = ask(sock, {"op": "cells", "pid": pid})
    assert r["pid"] == pid and r["live_bytes"] >= 5_000_001
    first, last, past = r["blocks"]
    assert first == {"addr": addr, "start": addr, "size": 5_000_001,
                     "kind": "block", "cell": None, "file": script,
                     "line": line, "function": "make",
                     "where": "hold.py:%d make" % line}
    assert last == dict(first, addr=addr + 4_999_999)
    assert past is None
    assert live["pid"] == pid and live["live_bytes"] >= 5_000_001
    assert cells["pid"] == pid and "cells" in cells


def test_a_client_neither_root_nor_traced_is_refused(open_dir):
    with agent_tracing_a_holder(open_dir) as (sock, _, pid, _):
        # The state directory is 0755 and the socket 0666: nobody reaches
        # it, and is refused for what it is, whatever pid it names.
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o755
        r = subprocess.run([PYTHON, "-c", AS_NOBODY, sock, str(pid)],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    own, reply = json.loads(r.stdout)
    assert reply == {"error": "not traced", "pid": own}


ASK_AS = r'''
import json, os, sys
sys.path.insert(0, sys.argv[1])
from memprof_bpf import agent

r = {"pid": os.getpid(), "uid": os.getuid()}
r["own"] = agent.query("live")
if os.getuid() == 0:
    os.seteuid(%d)  # the socket now says nobody; the process is root's
    r["as_nobody"] = [agent.query("live"), agent.last_error]
    os.seteuid(0)
    r["back"] = agent.query("live")
print(json.dumps(r))
''' % NOBODY


def test_a_traced_process_of_another_user_gets_its_own(open_dir):
    env = dict(os.environ, SUDO_UID=str(NOBODY), SUDO_GID=str(NOBODY))
    r, _ = run_traced(open_dir, ASK_AS, env)
    assert r["uid"] == NOBODY
    assert r["own"]["pid"] == r["pid"] and r["own"]["live_bytes"] > 0


def test_a_caller_not_of_the_process_uid_is_refused(open_dir):
    r, _ = run_traced(open_dir, ASK_AS)
    assert r["uid"] == 0 and r["own"]["pid"] == r["pid"]
    assert r["as_nobody"] == [None, "memprof-bpf agent: uid mismatch"]
    assert r["back"]["pid"] == r["pid"]


# ---- a notebook kernel ------------------------------------------------------

CELLS = [
    "import ctypes, json, sys\n"
    "from memprof_bpf import agent\n"
    "blob = bytearray(30_000_000)\n"
    "view = (ctypes.c_char * 1).from_buffer(blob)\n"
    "addr = ctypes.addressof(view)\n"
    "del view\n"
    "print(sys._getframe().f_code.co_filename)",
    "print(json.dumps(agent.lookup([addr, addr + 29_999_999,\n"
    "                               addr + 30_000_001])), agent.last_error)",
    "del blob\n"
    "print(json.dumps(agent.lookup([addr + 15_000_000])), agent.last_error)",
]


def output_of(cell):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream").strip()


def run_cell(c, nb, source):
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return c.execute_cell(nb.cells[-1], len(nb.cells) - 1)


def test_a_notebook_cell_is_named(tmp_path):
    if nbclient is None:
        pytest.skip("nbclient and nbformat are not installed")
    if not os.path.exists(os.path.join(PYTHONPATH, "memprof_bpf",
                                       "_memprof_markers.so")):
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    state = str(tmp_path / "state")
    a = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D",
                          str(tmp_path), "--comm", "ipykernel"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True,
                         env=dict(os.environ, MEMPROF_BPF_STATE_DIR=state))
    nb = nbformat.v4.new_notebook()
    env = dict(os.environ, PYTHONPATH=PYTHONPATH,
               MEMPROF_BPF_STATE_DIR=state,
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    try:
        assert wait_for(lambda: os.path.exists(
            os.path.join(state, "agent.sock"))), a.stderr.read()
        c = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                    startup_timeout=60)
        with c.setup_kernel(env=env):
            pid = c.km.provisioner.process.pid
            # Traced once the agent publishes its state.
            assert wait_for(lambda: os.path.exists(
                os.path.join(state, "%d.json" % pid)), 20)
            run_until_marked(c, nb, state, pid)
            ran = [run_cell(c, nb, source) for source in CELLS]
            out = [output_of(cell) for cell in ran]
            label = "In [%d]" % ran[0].execution_count
    finally:
        a.send_signal(signal.SIGINT)
        a.wait(30)
    cell_file = out[0]
    assert os.path.basename(os.path.dirname(cell_file)) == \
        "ipykernel_%d" % pid
    assert out[1].endswith(" None"), out[1]
    first, last, past = json.loads(out[1][:-len(" None")])
    assert first["start"] == last["start"] == first["addr"]
    assert last["addr"] == first["addr"] + 29_999_999
    for b in (first, last):
        assert {k: v for k, v in b.items() if k != "addr"} == {
            "start": first["addr"], "size": 30_000_001, "kind": "block",
            "cell": label, "file": cell_file, "line": 3,
            "function": "<module>",
            "where": "%s:3 <module>" % os.path.basename(cell_file)}
    assert past is None
    # Freed (the kernel's other threads allocate meanwhile: its live bytes
    # do not fall by exactly the buffer, as the script's do).
    assert out[2] == "[null] None"
