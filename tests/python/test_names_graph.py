"""The graph path of names.py: graph_of() (the in-process walk in the C
walker's JSON schema) and summarize_graph() agree with big_objs(); a small
hand-written graph with figures known in advance; cells from IPython's
input history; `python3 -m memprof_bpf.names --graph FILE`."""
import copy
import json
import os
import subprocess
import sys
import types

import pytest

from conftest import KERNEL_PYTHON, PYDIR
from memprof_bpf import names
from memprof_bpf.names import (EXITED, NO_AGENT_OUTSIDE, OTHER, GraphError,
                               big_objs, graph_of, summarize_graph)

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


# ---- in-process and outside agree ---------------------------------------------

FIELDS = ("name", "kind", "summary", "bytes", "exclusive_bytes",
          "shared_with", "cell", "hint", "complete")
NODE_KEYS = {"type", "size", "state", "view", "kids", "other", "cell",
             "where"}
GRAPH_KEYS = {"pid", "python", "total_live_bytes", "estimated", "elapsed",
              "max_depth", "stopped", "cut_depth", "unreadable", "history",
              "nodes", "roots"}


def rows(result):
    return [tuple(getattr(r, f) for f in FIELDS) for r in result]


def agree(code, **kw):
    """Run code in a fresh namespace; graph_of() through JSON and
    summarize_graph() must give big_objs()'s rows. Returns (graph,
    big_objs result)."""
    ns = {}
    exec(code, ns)
    graph = json.loads(json.dumps(graph_of(ns=ns, _lookup=False, **kw)))
    assert set(graph) == GRAPH_KEYS
    assert all(set(n) == NODE_KEYS for n in graph["nodes"])
    outside = summarize_graph(graph, n=None, min_bytes=0, hints=1000)
    inside = big_objs(ns=ns, _lookup=False, n=None, min_bytes=0, hints=1000,
                      **kw)
    assert rows(outside) == rows(inside)
    assert outside.complete == inside.complete
    assert outside.total_bytes == inside.total_bytes
    assert outside.nodes == inside.nodes and outside.names == inside.names
    assert len(inside) > 0
    return graph, inside


@pytest.fixture
def helper(monkeypatch):
    """A module whose globals are held outside the notebook's names."""
    mod = types.ModuleType("memprof_graph_helper")
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return mod


def test_agree_numpy_views_and_output_cache():
    graph, res = agree(
        "import numpy as np\n"
        "a = np.ones(200_000)\nv = a[::2]\nw = v[1:]\nc = a.copy()\n"
        "objs = np.array([bytes(100) for i in range(50)], dtype=object)\n"
        "Out = {3: v}\n_3 = v\n_ = v\n"
        "_ih = ['', 'import numpy as np', 'a = np.ones(200_000)\\n"
        "v = a[::2]\\nw = v[1:]', 'v', 'c = a.copy()']\n")
    r = {x.name: x for x in res}
    assert r["a"].hint.startswith("`del a` frees 0 B: ")
    assert "is a view of it" in r["a"].hint
    assert (r["a"].cell, r["w"].cell, r["Out[3]"].cell, r["c"].cell,
            r["_"].cell) == ("In [2]", "In [2]", "In [3]", "In [4]", None)
    assert any(n["view"] for n in graph["nodes"])
    assert graph["history"][3] == "v"


def test_agree_pandas_frames():
    agree("import numpy as np, pandas as pd\n"
          "m = np.ones((1000, 20))\n"
          "df = pd.DataFrame(m)\n"
          "f = df[df[0] > 0]\n"
          "s = pd.DataFrame({'s': ['v%d' % i for i in range(2000)]})\n")


def test_agree_containers_shared_leaves_and_cycles():
    agree("import numpy as np\n"
          "arrays = [np.ones(1000) * i for i in range(20)]\n"
          "holder = {'x': arrays[3], 'y': np.zeros(5000)}\n"
          "p = [bytearray(50000)]\nq = (p[0], 'x' * 1000)\n"
          "class Node: pass\n"
          "n = Node(); n.me = n; n.payload = bytearray(40000)\n"
          "x = {}; y = {'x': x, 'pay': bytearray(30000)}; x['y'] = y\n"
          "big = [float(i) for i in range(5000)]\n"
          "d = c = bytearray(1 << 16)\n_hidden = c\n")


def test_agree_held_from_outside(helper):
    helper.CACHE = []
    graph, res = agree("import memprof_graph_helper as h\n"
                       "big = bytearray(100000)\n"
                       "h.CACHE.append(big)\n"
                       "lst = h.CACHE\n"
                       "mine = [big, bytearray(20000)]\n")
    assert any(n["other"] for n in graph["nodes"])
    assert OTHER in {x.name: x for x in res}["big"].shared_with


def test_agree_depth_cut():
    graph, res = agree("deep = []\ncur = deep\n"
                       "for i in range(300):\n"
                       "    nxt = [bytearray(10)]\n    cur.append(nxt)\n"
                       "    cur = nxt\n"
                       "cur.append(bytearray(100000))\n"
                       "flat = [bytearray(5000)]\n"
                       "del cur, nxt, i\n", max_depth=40)
    assert graph["cut_depth"] and not res.complete
    assert any(n["state"] == "cut" for n in graph["nodes"])
    r = {x.name: x for x in res}
    assert not r["deep"].complete and r["flat"].complete


def test_agree_budget_cut():
    graph, res = agree("many = [bytearray(10) for i in range(200000)]\n"
                       "others = [[i] for i in range(3000)]\n", budget=0)
    assert graph["stopped"] == "time" and not res.complete
    assert any(n["state"] == "partial" for n in graph["nodes"])
    assert any("time budget" in note for note in res.notes)


def test_graph_of_is_plain_data():
    ns = {}
    exec("import numpy as np\na = np.ones(10)\nb = [a, a]\n", ns)
    g = graph_of(ns=ns, _lookup=False)
    assert g["pid"] == os.getpid() and g["python"] == sys.version.split()[0]
    assert g["estimated"] is True and g["total_live_bytes"] is None
    assert g["stopped"] is None and g["unreadable"] == 0
    assert g["history"] is None
    labels = {r["label"]: r for r in g["roots"]}
    assert set(labels) == {"a", "b"}
    assert labels["a"]["summary"] == "float64 (10,)"
    assert labels["b"]["summary"] == "len 2" and labels["b"]["row"]
    b = g["nodes"][labels["b"]["node"]]
    assert b["type"] == "list" and b["kids"] == [labels["a"]["node"]]
    assert json.loads(json.dumps(g)) == g


# ---- a hand-written graph ------------------------------------------------------

def node(type_, size, state="leaf", kids=(), view=False, other=False,
         cell=None, where=None):
    return {"type": type_, "size": size, "state": state, "kids": list(kids),
            "view": view, "other": other, "cell": cell, "where": where}


def root(label, i, summary="", row=True):
    return {"label": label, "node": i, "row": row, "summary": summary}


GRAPH = {
    "pid": 4242, "python": "3.11.2", "total_live_bytes": 9000000,
    "estimated": False, "elapsed": 0.21, "max_depth": 100, "stopped": None,
    "cut_depth": False, "unreadable": 0,
    "history": ["", "import numpy as np",
                "a = np.ones(10**6); v = a[::2]", "v", "x = make()",
                "y = (x[1],)\ncfg = {}",
                "%matplotlib inline\nz = bytearray(50000)\n!ls"],
    "nodes": [
        node("ndarray", 8000000),                                 # 0 a
        node("ndarray", 112, "done", [0], view=True),             # 1 v
        node("list", 1000, "done", [3, 4]),                       # 2 x
        node("bytes", 200000, cell="In [4]", where="x.py:3 make"),  # 3
        node("bytearray", 100000),                                # 4 x, y
        node("tuple", 64, "done", [4]),                           # 5 y
        node("dict", 5000, "done", [7], other=True),              # 6 cfg
        node("bytes", 70000),                                     # 7
        node("bytearray", 50000),                                 # 8 z
    ],
    "roots": [root("a", 0, "float64 (1000000,)"),
              root("v", 1, "float64 (500000,)"),
              root("Out[3]", 1, "float64 (500000,)"),
              root("_", 1, "float64 (500000,)"),
              root("_keep", 7, row=False),
              root("x", 2, "len 2"), root("y", 5, "len 1"),
              root("cfg", 6, "len 1"), root("z", 8, "len 50000")],
}


def test_hand_written_graph():
    res = summarize_graph(copy.deepcopy(GRAPH), n=None, min_bytes=0,
                          hints=100)
    r = {x.name: x for x in res}
    # by what del frees, then by what the name reaches, then by name
    assert [x.name for x in res] == ["x", "z", "y", "Out[3]", "_", "v",
                                     "a", "cfg"]
    assert (res.pid, res.python, res.live_bytes) == (4242, "3.11.2", 9000000)
    assert not res.estimated and res.complete and res.notes == []
    assert res.total_bytes == 8000000 + 112 + 1000 + 200000 + 100000 + \
        64 + 5000 + 70000 + 50000
    got = {x.name: (x.kind, x.bytes, x.exclusive_bytes, x.shared_with,
                    x.cell, x.where) for x in res}
    view = ["Out[3]", "_", "a"]
    assert got == {
        "a": ("ndarray", 8000000, 0, ["Out[3]", "_", "v"], "In [2]", None),
        "v": ("ndarray", 8000112, 0, view, "In [2]", None),
        "Out[3]": ("ndarray", 8000112, 0, ["_", "v", "a"], "In [3]", None),
        "_": ("ndarray", 8000112, 0, ["Out[3]", "v", "a"], None, None),
        "x": ("list", 301000, 201000, ["y"], "In [4]", "x.py:3 make"),
        "y": ("tuple", 100064, 64, ["x"], "In [5]", None),
        "cfg": ("dict", 75000, 0, [OTHER, "_keep"], "In [5]", None),
        "z": ("bytearray", 50000, 50000, [], "In [6]", None),
    }
    assert r["a"].hint == ("`del a` frees 0 B: `v` (also `Out[3]`, `_`) is "
                           "a view of it; `del a` + `%xdel v` frees 7.6 MiB")
    assert r["v"].hint == ("`del v` frees 0 B: cached as `Out[3]`, `_`; it "
                           "is a view of `a`; `del a` + `%xdel v` frees "
                           "7.6 MiB")
    assert r["x"].hint == ("`del x` frees 196.3 KiB of 293.9 KiB: shares "
                           "objects with `y`; `del x, y` frees 294.0 KiB")
    assert r["y"].hint == ("`del y` frees 64 B of 97.7 KiB: shares objects "
                           "with `x`; `del x, y` frees 294.0 KiB")
    # _keep is not a row (private), but holds part of cfg
    assert "_keep" not in r
    assert r["cfg"].hint == ("`del cfg` frees 0 B: it refers to `_keep`; "
                             "something outside the notebook's names holds "
                             "part of it " + OTHER)
    assert r["z"].hint == "`del z` frees 48.8 KiB"
    assert r["z"].summary == "len 50000" and r["_"].summary == \
        "float64 (500000,)"
    text = str(res).splitlines()
    assert text[0] == ("memprof-bpf names: 8 names reach 8.0 MiB of 8.6 MiB "
                       "live in the process (9 objects, 0.21 s)")
    assert text[2].split()[:4] == ["x", "list", "len", "2"]
    assert text[2].endswith("In [4] x.py:3 make")


def test_hand_written_graph_notes_and_bounds():
    g = copy.deepcopy(GRAPH)
    g.update(estimated=True, total_live_bytes=None, stopped="exited",
             unreadable=3)
    g["nodes"][2]["state"] = "partial"
    res = summarize_graph(g)
    assert res.notes == [NO_AGENT_OUTSIDE, EXITED,
                         "3 objects changed while read and were left out"]
    assert not res.complete
    r = {x.name: x for x in res}
    assert not r["x"].complete and r["a"].complete
    assert r["x"].hint.endswith("(lower bound: the walk was cut)")
    assert "\u2265" in str(res)
    g = copy.deepcopy(GRAPH)
    g["nodes"][6]["state"] = "cut"
    g["nodes"][6]["kids"] = []
    g["cut_depth"] = True
    res = summarize_graph(g)
    assert not res.complete and any("depth 100" in n for n in res.notes)
    assert {x.name: x for x in res}["cfg"].bytes == 5000


def test_minimum_and_rows():
    res = summarize_graph(copy.deepcopy(GRAPH), n=2, min_bytes=0, hints=1)
    assert [x.name for x in res] == ["x", "z"]
    assert res[0].hint and not res[1].hint
    res = summarize_graph(copy.deepcopy(GRAPH), min_bytes=100000)
    assert "z" not in [x.name for x in res]


@pytest.mark.parametrize("change, reason", [
    (lambda g: g.pop("roots"), "has no 'roots'"),
    (lambda g: g["nodes"][1]["kids"].append(9), "kid 9 is not a node"),
    (lambda g: g["nodes"][1]["kids"].append(True), "kid True is not"),
    (lambda g: g["nodes"][0].update(state="odd"), "bad state 'odd'"),
    (lambda g: g["nodes"][0].update(size="8"), "'size' is str, not int"),
    (lambda g: g["roots"][0].update(node=-1), "not a node index"),
    (lambda g: g.update(stopped="late"), "unknown 'stopped'"),
    (lambda g: g["nodes"].append(3), "node 9 is not an object"),
])
def test_bad_graphs(change, reason):
    g = copy.deepcopy(GRAPH)
    change(g)
    with pytest.raises(GraphError, match=reason.replace("(", r"\(")):
        summarize_graph(g)


# ---- cells from the input history ---------------------------------------------

HISTORY = [
    "",
    "import numpy as np\nimport pandas as pd, os.path",        # 1
    "a = b = np.ones(3)\nc, (d, *e) = 1, (2, 3, 4)\nf: int = 5",  # 2
    "for i in range(3):\n    g = i\nwith open('/dev/null') as fh:\n"
    "    pass\nimport json as j\nfrom os import path as p, sep",  # 3
    "a += 1\nx = 1\ndel x\nif (w := 10):\n    pass",             # 4
    "def fn():\n    local = 1\nclass K:\n    attr = 2\nx.y = 3\n"
    "x[0] = 4\nh == 5",                                         # 5
    "get_ipython().run_line_magic('time', 'q = 1')\nq2 = 2",   # 6
    "%matplotlib inline\nr = np.zeros(5)\nr2, r3 = 1, 2\nr4 == 1",  # 7
    "del b",                                                    # 8
    "y = 1",                                                    # 9
    "del y",                                                    # 10
    "y = 2\ndel y\ny = 3",                                      # 11
    "v = 1\ndel v",                                             # 12
]


@pytest.mark.parametrize("label, cell", [
    ("np", 1), ("pd", 1), ("os", 1), ("a", 4), ("b", 2), ("c", 2), ("d", 2),
    ("e", 2), ("f", 2), ("i", 3), ("g", 3), ("fh", 3), ("j", 3), ("p", 3),
    ("sep", 3), ("json", None), ("path", None), ("w", 4), ("fn", 5),
    ("K", 5), ("local", None), ("attr", None), ("h", None), ("q", None),
    ("q2", 6), ("r", 7), ("r2", 7), ("r3", None), ("r4", None), ("y", 11),
    ("v", None), ("x", None), ("Out[5]", 5), ("_12", 12),
    ("user_ns_hidden['_7']", 7), ("_", None), ("__", None), ("___", None),
    ("nowhere", None),
])
def test_cells_from_history(label, cell):
    want = None if cell is None else "In [%d]" % cell
    assert names._cell_from_history(label, HISTORY) == want


def test_cells_del_then_rebind_and_no_history():
    h = ["", "x = 1", "x = 2", "del x", "print(1)"]
    # the name exists now: the last cell that left it bound
    assert names._cell_from_history("x", h) == "In [2]"
    assert names._cell_from_history("x", h + ["x = 3"]) == "In [5]"
    assert names._cell_from_history("x", None) is None
    assert names._cell_from_history("Out[3]", None) == "In [3]"
    assert names._cell_from_history("x", ["", None, 3]) is None


# ---- the command line -----------------------------------------------------------

def cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=PYDIR)
    return subprocess.run([KERNEL_PYTHON, "-m", "memprof_bpf.names"] +
                          list(args), capture_output=True, text=True,
                          env=env, input=stdin, timeout=60)


@pytest.fixture
def graph_file(tmp_path):
    other = copy.deepcopy(GRAPH)
    other.update(pid=77, python="3.8.10", estimated=True,
                 total_live_bytes=None)
    path = tmp_path / "graphs.json"
    path.write_text(json.dumps([GRAPH, other]))
    return path


def test_cli_text(graph_file):
    r = cli("--graph", str(graph_file), "-n", "3")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    blocks = r.stdout.rstrip("\n").split("\n\npid ")
    assert len(blocks) == 2
    first, second = blocks[0].splitlines(), ("pid " + blocks[1]).splitlines()
    assert first[0] == "pid 4242 (python 3.11.2)"
    assert first[1].startswith("memprof-bpf names: 8 names reach 8.0 MiB")
    assert [line.split()[0] for line in first[3:6]] == ["x", "z", "y"]
    assert "hint: `del z` frees 48.8 KiB" in first
    assert second[0] == "pid 77 (python 3.8.10)"
    assert second[2] == "note: " + NO_AGENT_OUTSIDE
    # 0 rows: all of them
    r = cli("--graph", str(graph_file), "-n", "0", "--hints", "0")
    assert r.returncode == 0
    assert "hint:" not in r.stdout and "\nv " in r.stdout


def test_cli_json_and_stdin():
    r = cli("--graph", "-", "--format", "json", "--min-bytes", "60000",
            stdin=json.dumps(GRAPH))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    doc, = json.loads(r.stdout)
    assert {k: doc[k] for k in ("pid", "python", "total_live_bytes",
                                "complete", "estimated", "notes")} == {
        "pid": 4242, "python": "3.11.2", "total_live_bytes": 9000000,
        "complete": True, "estimated": False, "notes": []}
    assert [x["name"] for x in doc["names"]] == ["x", "y", "Out[3]", "_",
                                                 "v", "a", "cfg"]
    x = doc["names"][0]
    assert x == {"name": "x", "type": "list", "summary": "len 2",
                 "bytes": 301000, "exclusive_bytes": 201000,
                 "shared_with": ["y"], "cell": "In [4]",
                 "where": "x.py:3 make", "complete": True,
                 "hint": "`del x` frees 196.3 KiB of 293.9 KiB: shares "
                 "objects with `y`; `del x, y` frees 294.0 KiB"}


@pytest.mark.parametrize("content, reason", [
    ("{not json", "is not JSON"),
    ("42", "holds int, not a graph"),
    ("[[]]", "graph 0: a graph is a JSON object"),
    (json.dumps({"pid": 1, "nodes": [], "roots": [{"label": "a",
                                                   "node": 0}]}),
     "graph 0: pid 1: root 0: node 0 is not a node index"),
    (json.dumps({"pid": 1, "roots": [], "nodes": [
        {"type": "list", "size": 8, "state": "done", "kids": [5]}]}),
     "graph 0: pid 1: node 0: kid 5 is not a node index (0..0)"),
])
def test_cli_bad_input(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_text(content)
    r = cli("--graph", str(path))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("memprof-bpf names: ") and reason in r.stderr


def test_cli_bad_arguments(tmp_path):
    for args in (["--graph", str(tmp_path / "missing.json")],
                 ["--graph", "-", "--format", "xml"], ["-n", "2"]):
        r = cli(*args, stdin="[]")
        assert r.returncode == 2 and r.stdout == "", args
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(
            "memprof-bpf names: "), r.stderr
    r = cli("--graph", "-", stdin="[]")
    assert r.returncode == 0 and r.stdout == "\n"
