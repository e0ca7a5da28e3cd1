"""The hooks' bookkeeping (fake shell and library), source_head's cut, and
code_filename against terminal IPython's own compiler."""
import json
import os
import time
import types

import pytest

import memprof_bpf
from conftest import run_python
from memprof_bpf.cells import CellHooks, source_head

# ---- source_head -------------------------------------------------------------


@pytest.mark.parametrize("raw, head", [
    ("x = 1\ny = 2", "x = 1"),
    ("\n\n   \t\n   %time f(x)  \nmore", "%time f(x)"),
    ("", ""),
    (" \n\t\n", ""),
    ("a" * 100, "a" * 100),
    ("a" * 101, "a" * 100),
    ("a" * 99 + "\u00e9", "a" * 99),                   # 101 bytes: too long
    ("a" * 98 + "\u00e9b", "a" * 98 + "\u00e9"),      # exactly 100 bytes
    ("a" * 99 + "\u00e9" + "b", "a" * 99),            # no half of a 2-byte
    ("\u20ac" * 40, "\u20ac" * 33),                   # 3-byte: 99 bytes
    ("a" * 97 + "\U0001F600", "a" * 97),              # no part of a 4-byte
    ("a" * 96 + "\U0001F600", "a" * 96 + "\U0001F600"),
    ("a" * 60 + " " * 50 + "b", "a" * 60),            # no trailing blanks
])
def test_source_head(raw, head):
    got = source_head(raw)
    assert got == head
    assert len(got.encode("utf-8")) <= 100


def test_source_head_lone_surrogate_does_not_raise():
    assert source_head("x = '\udc80'") == "x = '\udc80'"
    assert len(source_head("\udc80" * 200).encode("utf-8", "replace")) <= 100


# ---- the hooks ---------------------------------------------------------------

class FakeMarkers:
    def __init__(self, traced=0):
        self.is_traced = traced
        self.calls = []

    def traced(self):
        return self.is_traced

    def start(self, n, file, head):
        self.calls.append(("start", n, file, head))

    def end(self, n, file, head, ok):
        self.calls.append(("end", n, file, head, ok))


class FakeShell:
    """Names cells like ipykernel, from the raw cell only."""
    execution_count = 5
    compile = types.SimpleNamespace(
        get_code_name=lambda raw, transformed, n: "/tmp/k/%s-%d.py"
        % (raw.split()[0], n))

    def transform_cell(self, raw):
        return raw


def info(raw, store_history=True):
    return types.SimpleNamespace(raw_cell=raw, store_history=store_history,
                                 silent=False, shell_futures=True)


def result(i, n, ok=True):
    return types.SimpleNamespace(info=i, execution_count=n, success=ok)


def test_untraced_hooks_compute_nothing():
    m = FakeMarkers(0)
    h = CellHooks(FakeShell(), m, counts_first=False)
    i = info("a = 1")
    h.pre_run_cell(i)
    assert h.last.code_filename is None and h.last.execution_count == 5
    h.post_run_cell(result(i, 5))
    assert m.calls == [] and h.running == []
    assert h.last.success is True


def test_traced_hooks_fire_both_markers():
    m = FakeMarkers(1)
    h = CellHooks(FakeShell(), m, counts_first=False)
    i = info("\n  first line  \nsecond")
    h.pre_run_cell(i)
    h.post_run_cell(result(i, 5, ok=False))
    assert m.calls == [("start", 5, b"/tmp/k/first-5.py", b"first line"),
                       ("end", 5, b"/tmp/k/first-5.py", b"first line", 0)]


def test_tracer_attaching_mid_cell_gets_the_end():
    m = FakeMarkers(0)
    h = CellHooks(FakeShell(), m, counts_first=False)
    i = info("b = 2")
    h.pre_run_cell(i)
    m.is_traced = 1
    h.post_run_cell(result(i, 5))
    assert m.calls == [("end", 5, b"/tmp/k/b-5.py", b"b = 2", 1)]


def test_nested_cells_and_empty_cells():
    m = FakeMarkers(1)
    shell = FakeShell()
    h = CellHooks(shell, m, counts_first=False)
    outer, inner, empty = info("outer"), info("inner", False), info("")
    h.pre_run_cell(outer)
    h.pre_run_cell(inner)
    h.post_run_cell(result(inner, None))     # store_history=False: no count
    h.post_run_cell(result(empty, None))     # empty cell: no pre_run_cell
    h.post_run_cell(result(outer, 5))
    assert [c[:3] for c in m.calls] == [
        ("start", 5, b"/tmp/k/outer-5.py"), ("start", 5, b"/tmp/k/inner-5.py"),
        ("end", 5, b"/tmp/k/inner-5.py"), ("end", 5, b"/tmp/k/outer-5.py")]
    assert h.running == []


def test_run_cell_failing_before_a_result():
    m = FakeMarkers(1)
    h = CellHooks(FakeShell(), m, counts_first=False)
    h.pre_run_cell(info("c = 3"))
    h.post_run_cell(None)
    assert m.calls[-1] == ("end", 5, b"/tmp/k/c-5.py", b"c = 3", 0)
    h.post_run_cell(None)                    # nothing left: ignored
    assert len(m.calls) == 2


# ---- code_filename against terminal IPython ----------------------------------

TERMINAL = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
import memprof_bpf
memprof_bpf.force = True
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "memprof_bpf")
GRAB = "FN = sys._getframe().f_code.co_filename"
out = []
for code, kw in [
        ("import sys\n" + GRAB, dict(store_history=True)),
        ("\n%time y = 1\n" + GRAB, dict(store_history=True)),
        (GRAB, dict(store_history=False)),
        (GRAB, dict(store_history=True, shell_futures=False)),
        (GRAB + "\nraise ValueError('x')", dict(store_history=True)),
        ("x = '\u00e9t\u00e9'\n" + GRAB, dict(store_history=True)),
        ]:
    ip.user_ns.pop("FN", None)
    r = ip.run_cell(code, **kw)
    c = memprof_bpf.last_cell
    out.append([ip.user_ns.get("FN"), c.code_filename, c.execution_count,
                r.execution_count, c.success])
print(json.dumps(out))
"""


def test_code_filename_matches_terminal_ipython(library, tmp_path):
    runs = json.loads(run_python(TERMINAL, {"IPYTHONDIR": str(tmp_path)})
                      .splitlines()[-1])
    for co_filename, computed, n, reported, ok in runs:
        assert co_filename.startswith("<ipython-input-%d-" % n)
        assert computed == co_filename
    assert [r[3] for r in runs] == [1, 2, None, 3, 4, 5]
    assert [r[4] for r in runs] == [True, True, True, True, False, True]


# ---- waiting for the agent on load -------------------------------------------

class Attaching:
    """traced() turns 1 on its nth call, as if the agent attached then."""

    def __init__(self, n):
        self.n = n
        self.calls = 0

    def traced(self):
        self.calls += 1
        return int(self.calls >= self.n)


def test_no_wait_without_an_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", str(tmp_path))
    m = Attaching(100)
    assert memprof_bpf.wait_for_agent(m) is False and m.calls == 1
    (tmp_path / "agent.pid").write_text("999999999\n")   # no such process
    assert memprof_bpf.wait_for_agent(m) is False and m.calls == 2


def test_wait_for_a_running_agent_to_attach(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", str(tmp_path))
    (tmp_path / "agent.pid").write_text("%d\n" % os.getpid())
    m = Attaching(4)
    t0 = time.monotonic()
    assert memprof_bpf.wait_for_agent(m) is True
    assert m.calls == 4 and time.monotonic() - t0 < 0.5
    m = Attaching(10 ** 6)
    t0 = time.monotonic()
    assert memprof_bpf.wait_for_agent(m, timeout=0.2) is False
    assert 0.2 <= time.monotonic() - t0 < 0.5
    assert 5 <= m.calls <= 12   # every 20 ms


def test_ipython_9_counts_before_pre_run_cell():
    # IPython 9's run_cell_async raises execution_count, then triggers
    # pre_run_cell: the cell being run is the number before.
    m = FakeMarkers(1)
    shell = FakeShell()
    shell.execution_count = 6
    h = CellHooks(shell, m, counts_first=True)
    outer, inner = info("outer"), info("inner", False)
    h.pre_run_cell(outer)
    h.pre_run_cell(inner)  # store_history=False: not counted
    h.post_run_cell(result(inner, None))
    h.post_run_cell(result(outer, 5))
    assert [c[:3] for c in m.calls] == [
        ("start", 5, b"/tmp/k/outer-5.py"), ("start", 6, b"/tmp/k/inner-6.py"),
        ("end", 6, b"/tmp/k/inner-6.py"), ("end", 5, b"/tmp/k/outer-5.py")]


def test_ipython_version_decides_the_order():
    import IPython
    from memprof_bpf.cells import ipython_counts_first
    assert ipython_counts_first() == (IPython.version_info[0] >= 9)
    assert CellHooks(FakeShell(), FakeMarkers(0)).counts_first == \
        (IPython.version_info[0] >= 9)
