"""big_objs(): the reference walk on synthetic graphs (cycles, depth, shared
leaves, outside references, aliases, the budget), numpy/pandas buffers and
IPython's output cache, "what del frees" checked against tracemalloc, agent
data through a fake lookup, and a real kernel without the agent."""
import ctypes
import gc
import json
import os
import sys
import tracemalloc
import types
import weakref

import pytest

from conftest import KERNEL_PYTHON, PYDIR
from memprof_bpf import names
from memprof_bpf.names import NO_AGENT, NO_AGENT_HISTORY, OTHER, big_objs

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

KiB, MiB = 1 << 10, 1 << 20


def run(code, **kw):
    """Run code in a fresh namespace (its names are that namespace's keys:
    no test-function local holds the objects) and big_objs() over it."""
    ns = {}
    exec(code, ns)
    kw.setdefault("_lookup", False)
    kw.setdefault("min_bytes", 0)
    kw.setdefault("n", None)
    return ns, big_objs(ns=ns, **kw)


def by_name(result):
    return {r.name: r for r in result}


def near(value, expected, tolerance=0.02, slack=0):
    return abs(value - expected) <= max(tolerance * expected, slack)


def near_freed(freed, expected):
    """Within 2%, or 512 bytes: CPython keeps small lists, tuples, dicts
    and floats on free lists, which tracemalloc does not see released."""
    return near(freed, expected, slack=512)


@pytest.fixture
def traced():
    """tracemalloc on for the test (numpy reports its buffers to it)."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    yield
    if not was:
        tracemalloc.stop()


def freed_by(ns, statement):
    """Bytes tracemalloc sees released by statement + gc.collect()."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    exec(statement, ns)
    gc.collect()
    return before - tracemalloc.get_traced_memory()[0]


# ---- reference counts --------------------------------------------------------

def test_refcount_calibration():
    """The baselines are what an object held only by our own list or node
    shows; one more reference anywhere is seen."""
    assert names._loop_base() == 3   # the list, the loop variable, the arg
    assert names._map_base() == 2    # the list, the argument
    probe = names._Node(object(), 0, names._LEAF)
    base = names._node_base()
    assert names._rc(probe) - base == 0
    extra = probe.obj
    assert names._rc(probe) - base == 1
    del extra
    assert names._rc(probe) - base == 0


@pytest.fixture
def helper(monkeypatch):
    """A module memprof_names_helper: its globals are held outside the
    notebook's names."""
    mod = types.ModuleType("memprof_names_helper")
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return mod


def test_private_and_shared_elements(helper):
    """An element held by its container alone is the container's; one also
    held elsewhere is shared, small or in a fast-path chunk."""
    helper.F = float("1.5e300")
    ns, res = run("import memprof_names_helper as h\n"
                  "small = [float(i) for i in range(100)] + [h.F]\n"
                  "big = [float(i) for i in range(100000)] + [h.F]\n")
    r = by_name(res)
    for name, n, other in (("small", 100, "big"), ("big", 100000, "small")):
        assert r[name].bytes == sys.getsizeof(ns[name]) + 24 * (n + 1)
        assert r[name].exclusive_bytes == sys.getsizeof(ns[name]) + 24 * n
        assert r[name].shared_bytes == {OTHER: 24, other: 24}


# ---- the walk on synthetic graphs --------------------------------------------

def test_cycles(traced):
    ns, res = run(
        "class Node: pass\n"
        "a = Node(); a.me = a; a.payload = bytearray(400000)\n"
        "x = {}; y = {'x': x, 'pay': bytearray(300000)}; x['y'] = y\n")
    r = by_name(res)
    assert res.complete
    assert r["a"].exclusive_bytes == r["a"].bytes > 400000
    assert r["a"].shared_with == []
    assert r["x"].exclusive_bytes == r["y"].exclusive_bytes == 0
    assert r["x"].shared_with == ["y"] and r["y"].shared_with == ["x"]
    assert r["x"].bytes == r["y"].bytes > 300000
    assert "`del x, y` frees" in r["x"].hint
    assert near_freed(freed_by(ns, "del a"), r["a"].exclusive_bytes)
    assert freed_by(ns, "del x") < 1024
    assert near_freed(freed_by(ns, "del y"), r["y"].bytes)


def test_depth_limit():
    code = ("deep = []\ncur = deep\n"
            "for i in range(1000):\n"
            "    nxt = []\n    cur.append(nxt)\n    cur = nxt\n"
            "cur.append(bytearray(100000))\n"
            "del cur, nxt, i\n")
    ns, res = run(code, max_depth=50)
    deep = by_name(res)["deep"]
    assert not deep.complete and not res.complete
    assert deep.bytes < 100000
    assert any("depth 50" in note for note in res.notes)
    assert "\u2265" in str(res)
    ns, res = run(code, max_depth=2000)
    deep = by_name(res)["deep"]
    assert deep.complete and res.complete
    size, cur = 0, ns["deep"]
    while isinstance(cur, list):
        size += sys.getsizeof(cur)
        cur = cur[0]
    size += sys.getsizeof(cur)
    assert deep.exclusive_bytes == size


def test_shared_leaf_between_two_names(traced):
    ns, res = run("p = [bytearray(500000)]\nq = (p[0], 'x' * 1000)\n")
    r = by_name(res)
    buf = sys.getsizeof(ns["p"][0])
    assert r["p"].shared_with == ["q"] and r["q"].shared_with == ["p"]
    assert r["p"].shared_bytes == {"q": buf}
    assert r["p"].exclusive_bytes == sys.getsizeof(ns["p"])
    assert r["p"].bytes == r["p"].exclusive_bytes + buf
    assert "shares objects with `q`" in r["p"].hint
    assert "`del p, q` frees" in r["p"].hint
    assert near_freed(freed_by(ns, "del p"), r["p"].exclusive_bytes)
    assert near_freed(freed_by(ns, "del q"), r["q"].bytes)


def test_held_from_outside_is_not_freeable(traced, helper):
    helper.CACHE = []
    ns, res = run("import memprof_names_helper as h\n"
                  "big = bytearray(1000000)\n"
                  "h.CACHE.append(big)\n"
                  "lst = h.CACHE\n"
                  "mine = [big, bytearray(200000)]\n")
    r = by_name(res)
    assert "h" not in r  # a module: a boundary, not a row
    assert r["big"].exclusive_bytes == 0
    assert OTHER in r["big"].shared_with
    assert r["lst"].exclusive_bytes == 0
    assert r["lst"].shared_with[0] == OTHER
    assert "outside the notebook's names" in r["big"].hint
    assert near(r["mine"].exclusive_bytes,
                sys.getsizeof(ns["mine"]) + 200000)
    assert freed_by(ns, "del big, lst") < 1024
    assert near_freed(freed_by(ns, "del mine"), r["mine"].exclusive_bytes)


def test_aliases():
    ns, res = run("c = bytearray(1 << 20)\nd = c\n_hidden = c\n")
    r = by_name(res)
    assert "_hidden" not in r  # private names are not rows...
    assert r["c"].shared_with == ["_hidden", "d"]  # ...but they hold things
    assert r["c"].exclusive_bytes == 0
    assert "`d` is the same object" in r["c"].hint
    assert "`del _hidden, c, d` frees 1.0 MiB" in r["c"].hint


def test_time_budget_gives_lower_bounds():
    ns, res = run("many = [bytearray(10) for i in range(300000)]\n"
                  "others = [[i] for i in range(3000)]\n", budget=0)
    assert not res.complete
    assert any("time budget" in note for note in res.notes)
    many = by_name(res)["many"]
    assert not many.complete
    assert many.bytes < sys.getsizeof(ns["many"]) + 300000 * 67
    assert "\u2265" in str(res)
    ns, res = run("many = [bytearray(10) for i in range(300000)]\n")
    assert res.complete and by_name(res)["many"].complete


def test_float_list_fast_path_is_exact(traced):
    ns, res = run("fl = [float(i) for i in range(500000)]\n"
                  "tu = tuple(str(i) * 3 for i in range(100000))\n"
                  "rep = [1.5e300] * 10000\n")
    r = by_name(res)
    assert r["fl"].exclusive_bytes == sys.getsizeof(ns["fl"]) + sum(
        map(sys.getsizeof, ns["fl"]))
    assert r["tu"].exclusive_bytes == sys.getsizeof(ns["tu"]) + sum(
        map(sys.getsizeof, ns["tu"]))
    # one float 10000 times: counted once, held by the code's constants too
    assert r["rep"].bytes == sys.getsizeof(ns["rep"]) + 24
    assert near_freed(freed_by(ns, "del fl"), r["fl"].exclusive_bytes)
    assert near_freed(freed_by(ns, "del tu"), r["tu"].exclusive_bytes)


def test_dict_string_keys_are_counted():
    """CPython's dict_traverse skips str keys; they are the dict's too."""
    for n in (100, 5000):  # by gc.get_referents, and by chunks
        ns, res = run("d = {'key %%d' %% i: float(i) for i in range(%d)}"
                      % n)
        d = ns["d"]
        assert by_name(res)["d"].exclusive_bytes == sys.getsizeof(d) + sum(
            sys.getsizeof(k) + sys.getsizeof(v) for k, v in d.items())


def test_boundaries_are_not_rows():
    ns, res = run("import json\nfrom os import path\n"
                  "def f(): return 1\nclass K: pass\n"
                  "x = bytearray(5000)\n")
    assert [r.name for r in res] == ["x"]


# ---- numpy, pandas and the output cache --------------------------------------

SCENARIO = """
import os
import numpy as np
import pandas as pd
a = np.ones(1_000_000)                     # 8 MB
v = a[::2]                                 # a view of a
c = a.copy()                               # its own 8 MB
m = np.ones((1000, 500))                   # 4 MB
df = pd.DataFrame(m)                       # see test_dataframe_...
dfc = pd.DataFrame({"x": np.arange(300_000.)})  # a dict of arrays: copied
blist = [os.urandom(1000) for i in range(2000)]
r = np.arange(500_000.)                    # 4 MB, left in the output cache:
Out = {3: r}
_3 = r
_ = r
"""


def test_dataframe_from_an_array_shares_its_buffer():
    """What pandas does here: DataFrame(ndarray) keeps the array (its one
    block's values are m.T, whose .base is m: copy=False is the default
    for an ndarray in pandas < 3), DataFrame(dict of arrays) copies them
    into a new block. big_objs sees the same thing through the walk
    DataFrame -> _mgr -> blocks -> values -> .base."""
    m = np.ones((10, 5))
    df = pd.DataFrame(m)
    values = df._mgr.blocks[0].values
    assert values.base is m and np.shares_memory(values, m)
    x = np.arange(10.)
    assert not np.shares_memory(pd.DataFrame({"x": x}).to_numpy(), x)
    assert pd.__version__.split(".")[0] in ("1", "2")


def test_numpy_pandas_and_the_output_cache(traced):
    ns, res = run(SCENARIO, hints=20)
    r = by_name(res)
    assert res.complete and res.estimated and NO_AGENT in res.notes
    # ranking: by what del frees, then by what the name reaches
    assert [x.name for x in res[:3]] == ["c", "dfc", "blist"]
    order = [x.name for x in res]
    assert order.index("a") < order.index("m") < order.index("Out[3]")
    assert "os" not in order and "np" not in order

    assert near(r["c"].exclusive_bytes, 8e6)
    assert r["c"].shared_with == []
    assert near(r["a"].bytes, 8e6) and r["a"].exclusive_bytes == 0
    assert r["a"].shared_with == ["v"]
    assert near(r["v"].bytes, 8e6) and r["v"].exclusive_bytes < KiB
    assert r["v"].shared_with == ["a"]
    assert r["a"].hint == ("`del a` frees 0 B: `v` is a view of it; "
                           "`del a, v` frees 7.6 MiB")
    assert "it is a view of `a`" in r["v"].hint

    assert near(r["m"].bytes, 4e6) and r["m"].exclusive_bytes == 0
    assert r["m"].shared_with == ["df"]
    assert near(r["df"].bytes, 4e6) and r["df"].exclusive_bytes < 16 * KiB
    assert r["df"].shared_with == ["m"]
    assert near(r["dfc"].exclusive_bytes, 2.4e6)

    assert near(r["blist"].exclusive_bytes, 2000 * 1033 + 16056)

    for name, others in (("r", ["Out[3]", "_"]), ("Out[3]", ["_", "r"]),
                         ("_", ["Out[3]", "r"])):
        assert near(r[name].bytes, 4e6)
        assert r[name].exclusive_bytes == 0
        assert r[name].shared_with == others
    assert "_3" not in r  # an alias of Out[3], not a row
    assert r["r"].kind == "ndarray" and r["df"].kind == "DataFrame"

    # What del frees, for real.
    for name in ("c", "dfc", "blist"):
        assert near_freed(freed_by(ns, "del " + name),
                          r[name].exclusive_bytes)
    assert freed_by(ns, "del a") < KiB
    assert near(freed_by(ns, "del v"), 8e6)
    assert freed_by(ns, "del m") < KiB
    assert near(freed_by(ns, "del df"), r["m"].bytes)
    assert freed_by(ns, "del r") < KiB
    assert near(freed_by(ns, "del Out[3], _3, _"), 4e6)


def test_object_arrays_and_string_columns(traced):
    ns, res = run("import numpy as np, pandas as pd\n"
                  "objs = np.array(['s%d' % i for i in range(100000)], "
                  "dtype=object)\n"
                  "strs = pd.DataFrame({'s': ['v%d' % i "
                  "for i in range(100000)]})\n")
    r = by_name(res)
    assert r["objs"].exclusive_bytes == sys.getsizeof(ns["objs"]) + sum(
        map(sys.getsizeof, ns["objs"]))
    assert near_freed(freed_by(ns, "del objs"), r["objs"].exclusive_bytes)
    assert near_freed(freed_by(ns, "del strs"), r["strs"].exclusive_bytes)


def test_nothing_is_kept():
    ns = {}
    exec("import numpy as np\nclass K: pass\nk = K()\nk.a = np.ones(10)\n"
         "l = [k, bytearray(10)]\n", ns)
    counts = [sys.getrefcount(ns[x]) for x in ("k", "l")]
    alive = weakref.ref(ns["k"])
    big_objs(ns=ns, _lookup=False)
    assert [sys.getrefcount(ns[x]) for x in ("k", "l")] == counts
    del ns["k"], ns["l"]
    gc.collect()
    assert alive() is None
    assert gc.isenabled()


# ---- agent data --------------------------------------------------------------

def test_fake_agent_sizes_and_cells():
    ns = {}
    exec("import numpy as np\nc = np.ones(100000)\nsmall = np.ones(10)\n"
         "blob = b'x' * 300000\nlst = [float(i) for i in range(40000)]\n", ns)
    data = ns["c"].__array_interface__["data"][0]
    asked = []

    def lookup(addrs):
        asked.extend(addrs)
        out = []
        for a in addrs:
            if a == data:  # the agent's block: 4 KiB more than nbytes
                out.append({"addr": a, "start": a, "size": 800000 + 4096,
                            "kind": "block", "cell": "In [3]",
                            "file": "/tmp/x.py", "line": 12,
                            "function": "<lambda>",
                            "where": "x.py:12 <lambda>"})
            elif a == id(ns["blob"]):  # an arena: too big, ignored
                out.append({"addr": a, "start": a - 64, "size": 64 << 20,
                            "kind": "mapping", "cell": "In [9]"})
            else:
                out.append(None)
        return out

    res = big_objs(ns=ns, _lookup=lookup)
    r = by_name(res)
    assert data in asked and id(ns["blob"]) in asked
    assert len(asked) == 4  # c, small, blob, and lst's item array
    assert not res.estimated and NO_AGENT not in res.notes
    assert r["c"].bytes == sys.getsizeof(ns["c"]) + 4096
    assert (r["c"].cell, r["c"].where) == ("In [3]", "x.py:12 <lambda>")
    assert r["blob"].cell is None and r["blob"].bytes == sys.getsizeof(
        ns["blob"])
    assert "In [3] x.py:12 <lambda>" in str(res)
    assert "x.py:12 &lt;lambda&gt;" in res._repr_html_()

    res = big_objs(ns=ns, _lookup=lambda addrs: None)
    assert res.estimated and NO_AGENT in str(res)
    assert by_name(res)["c"].cell is None


def test_list_buffer_address():
    lst = [None] * 100000
    n = names._Node(lst, 0, names._LEAF)
    addr = names._address(n, names._BUF_LIST)
    first = ctypes.c_void_p.from_address(addr).value
    assert first == id(None)


def test_without_agent_module_or_agent(monkeypatch, tmp_path):
    ns = {}
    exec("x = bytearray(300000)\n", ns)
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", str(tmp_path))
    res = big_objs(ns=ns)  # the real agent module, no agent: estimates
    assert res.estimated and NO_AGENT in res.notes
    monkeypatch.setitem(sys.modules, "memprof_bpf.agent", None)
    res = big_objs(ns=ns)  # no agent module at all
    assert res.estimated and by_name(res)["x"].bytes == sys.getsizeof(ns["x"])


# ---- rendering ---------------------------------------------------------------

def test_text_and_html():
    ns, res = run("import numpy as np\na = np.ones(200000)\nb = a[1:]\n"
                  "Out = {4: b}\n_4 = b\n", min_bytes=KiB)
    text = str(res)
    assert text == repr(res)
    lines = text.splitlines()
    assert lines[0].startswith("big_objs: ")
    assert lines[1] == "note: " + NO_AGENT
    assert lines[2].split() == ["name", "type", "reaches", "del", "frees",
                                "shared", "with", "allocated", "in"]
    assert lines[3].split()[:2] == ["Out[4]", "ndarray"]
    assert "hint: `del a` frees 0 B" in text
    r = by_name(res)
    assert r["a"].hint == ("`del a` frees 0 B: `b` (also `Out[4]`) is a "
                           "view of it; `del a` + `%xdel b` frees 1.5 MiB")
    assert r["b"].hint == ("`del b` frees 0 B: cached as `Out[4]`; it is a "
                           "view of `a`; `del a` + `%xdel b` frees 1.5 MiB")
    html = res._repr_html_()
    assert html.count("<tr>") == len(res) + 1
    assert "`%xdel b`" in html
    assert res[0]._asdict()["name"] == res[0].name


# ---- a real kernel (nbclient), no agent --------------------------------------

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

KERNEL_CELLS = [
    "import gc, json, tracemalloc\ntracemalloc.start()\n"
    "import numpy as np\nfrom memprof_bpf import big_objs",
    "a = np.ones(2_000_000); v = a[1:]; a2 = np.zeros(1_000_000)",
    "a2",
    "res = big_objs()\n"
    "print(json.dumps({'estimated': res.estimated, 'notes': res.notes, "
    "'rows': {r.name: [r.bytes, r.exclusive_bytes, r.shared_with, r.cell, "
    "r.hint] for r in res}}))",
    "before = tracemalloc.get_traced_memory()[0]\n%xdel a2\ngc.collect()\n"
    "print(before - tracemalloc.get_traced_memory()[0])",
    "%load_ext memprof_bpf",
    "%memprof names -n 2",
]


def test_kernel_without_agent(library, tmp_path):
    spec = tmp_path / "kernels" / "memprof-names"
    spec.mkdir(parents=True)
    (tmp_path / "state").mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [KERNEL_PYTHON, "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "memprof-bpf names", "language": "python",
        "env": {"PYTHONPATH": PYDIR, "IPYTHONDIR": str(tmp_path / "ipy"),
                "MEMPROF_BPF_STATE_DIR": str(tmp_path / "state"),
                "PYDEVD_DISABLE_FILE_VALIDATION": "1"}}))
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp_path)
    try:
        nbclient.NotebookClient(nb, kernel_name="memprof-names", timeout=60,
                                resources={"metadata": {"path": str(
                                    tmp_path)}}).execute()
    finally:
        if saved is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = saved

    def text(i):
        return "".join(o.get("text", "") for o in nb.cells[i].outputs)

    doc = json.loads(text(3))
    # no agent: the cells come from the input history (_ih)
    assert doc["estimated"] and NO_AGENT_HISTORY in doc["notes"]
    rows = doc["rows"]
    # a2 is held by Out[3], _, and IPython's copies of them (_3, the
    # displayhook, user_ns_hidden, the last execution result): all counted
    # as the output cache, none as "other references".
    assert rows["a2"][1:4] == [0, ["Out[3]", "_"], "In [2]"]
    assert rows["Out[3]"][2:4] == [["_", "a2"], "In [3]"]
    assert rows["a"][3] == rows["v"][3] == "In [2]"
    assert rows["_"][3] is None
    assert near(rows["a2"][0], 8e6)
    assert rows["a2"][4] == ("`del a2` frees 0 B: cached as `Out[3]`, `_`; "
                             "`%xdel a2` frees 7.6 MiB")
    assert rows["a"][1:3] == [0, ["v"]]
    assert "np" not in rows and "big_objs" not in rows
    # The hint is right: %xdel frees it.
    assert near(int(text(4)), 8e6)
    out = text(6).splitlines()
    assert out[0].startswith("big_objs: ")
    assert out[1] == "note: " + NO_AGENT_HISTORY
    # the rows: res (the result of cell 4: its own few KiB), v, a
    assert [line.split()[0] for line in out[3:5]] == ["res", "v"]


def test_magic_reports_bad_arguments(capsys):
    import memprof_bpf
    assert memprof_bpf.memprof("names --min-bytes lots") is None
    assert capsys.readouterr().out == (
        "%memprof: argument --min-bytes: invalid int value: 'lots'\n")
    memprof_bpf.memprof("names --help")
    assert capsys.readouterr().out.startswith("usage: %memprof names [-h]")
