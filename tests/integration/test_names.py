"""big_objs() in a real Jupyter kernel (Debian's ipykernel via nbclient),
with the agent tracing it (--comm ipykernel) and without: names that hold
known numpy, pandas and bytes buffers, a view, a copy and a value left in
the output cache; what `del` frees checked by deleting and asking the
agent how many bytes are live."""
import json

import pytest

from conftest import wait_for
from test_notebook import (agent, kernel, marker_library, run_until_marked,
                           state_of)

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

MiB = 1 << 20
ARRAY = 200 * MiB   # a: np.ones(200 MiB / 8)
BLOBS = 50 * 1_000_033  # blobs: 50 x bytes(1_000_000), 33 B header each
OUT = 80 * MiB      # the value left in Out[8] and `_`

CELLS = [
    "import numpy as np, pandas as pd, json, gc\n"
    "from memprof_bpf import big_objs, agent",
    "a = np.ones(%d)" % (ARRAY // 8),                     # 1
    "v = a[::2]  # a view: shares a's buffer",
    "c = a.copy()",                                       # 3
    "df = pd.DataFrame(a.reshape(-1, 4))  # no copy",
    "blobs = [bytes(1_000_000) for _ in range(50)]",      # 5
    "np.zeros(%d) + 1  # left in Out[N] and _" % (OUT // 8),  # 6
    # The table as JSON on stdout.
    "rows = big_objs(n=None, min_bytes=1 << 20)\n"
    "print(json.dumps({'estimated': rows.estimated, 'rows': [\n"
    "    dict(name=r.name, bytes=r.bytes, exclusive=r.exclusive_bytes,\n"
    "         shared=r.shared_with, cell=r.cell, where=r.where,\n"
    "         hint=r.hint) for r in rows]}))",
]


def near(value, want, tol=0.02):
    return abs(value - want) <= tol * want


def notebook(state, sid=None):
    """A real kernel with an empty notebook: cells are added as they run
    (sid: ipykernel 7, numpy 2 and pandas 2.3 in the unstable root)."""
    return kernel(state, nb=nbformat.v4.new_notebook(), sid=sid)


def run(c, nb, source):
    """Run one more cell; its stdout (the cell is in nb.cells[-1])."""
    nb.cells.append(nbformat.v4.new_code_cell(source))
    cell = c.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream")


def run_all(c, nb):
    """CELLS; big_objs()'s rows, and the label of each CELLS index."""
    labels = []
    for source in CELLS:
        text = run(c, nb, source)
        labels.append("In [%d]" % nb.cells[-1].execution_count)
    doc = json.loads(text)
    return doc, {r["name"]: r for r in doc["rows"]}, labels


def check_sharing(doc, rows):
    """What the names reach and share, the same with or without agent."""
    names = [r["name"] for r in doc["rows"]]
    # c alone owns its 200 MiB: first. blobs next. a, v, df share one
    # buffer: `del` of any one of them frees (almost) nothing.
    assert names[:2] == ["c", "blobs"], names
    assert near(rows["c"]["exclusive"], ARRAY)
    assert near(rows["blobs"]["exclusive"], BLOBS)
    for name in ("a", "v", "df"):
        assert near(rows[name]["bytes"], ARRAY), rows[name]
        assert rows[name]["exclusive"] < MiB, rows[name]
    assert {"v", "df"} <= set(rows["a"]["shared"]), rows["a"]
    assert "a" in rows["v"]["shared"] and "a" in rows["df"]["shared"]
    # The output cache: Out[N] and _ hold the same 80 MiB.
    out, = [r for n, r in rows.items() if n.startswith("Out[")]
    assert near(out["bytes"], OUT) and out["exclusive"] < MiB, out
    assert "_" in out["shared"], out
    assert rows["a"]["hint"], rows["a"]  # top rows explain the trap


def test_big_objs_with_the_agent(tmp_path, sid):
    if not marker_library():
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    with agent(tmp_path, sid) as (a, state), notebook(state, sid) as (c, nb):
        assert wait_for(lambda: state_of(state, c.pid) is not None, 20)
        # Cells are named In [N] once the agent has the extension's
        # markers (loading waits 1 s for that; a loaded machine may take
        # longer).
        run_until_marked(c, nb, state, c.pid)
        doc, rows, labels = run_all(c, nb)
        assert doc["estimated"] is False, doc
        check_sharing(doc, rows)
        # Exact sizes from the agent's blocks, and the allocating cells.
        assert rows["c"]["exclusive"] >= ARRAY
        assert rows["c"]["cell"] == labels[3], (rows["c"], labels)
        assert rows["a"]["cell"] == labels[1], (rows["a"], labels)
        assert rows["blobs"]["cell"] == labels[5], (rows["blobs"], labels)
        # What `del` frees, measured: the agent's live bytes before and
        # after. c frees what big_objs said; a frees nothing (v, df).
        freed = json.loads(run(c, nb, (
            "before = agent.live_bytes()\n"
            "del c; gc.collect()\n"
            "mid = agent.live_bytes()\n"
            "del a; gc.collect()\n"
            "print(json.dumps([before - mid, mid - agent.live_bytes()]))")))
        assert near(freed[0], rows["c"]["exclusive"]), (freed, rows["c"])
        assert freed[1] < MiB, freed
        # And the pair the hint names frees the shared buffer.
        freed = json.loads(run(c, nb, (
            "before = agent.live_bytes()\n"
            "del v, df; gc.collect()\n"
            "print(json.dumps(before - agent.live_bytes()))")))
        assert near(freed, ARRAY), freed


def test_big_objs_without_an_agent(tmp_path):
    state = tmp_path / "no-agent"
    with notebook(state) as (c, nb):
        doc, rows, labels = run_all(c, nb)
        assert doc["estimated"] is True
        check_sharing(doc, rows)
        # No agent: a name's cell is the last cell that bound it (from
        # IPython's input history), an output's its own; `where` unknown.
        for name, i in (("a", 1), ("v", 2), ("c", 3), ("blobs", 5)):
            assert rows[name]["cell"] == labels[i], (rows[name], labels)
        assert rows["_"]["cell"] is None
        assert all(r["where"] is None for r in doc["rows"])
        text = run(c, nb, "print(big_objs(n=3))")
        assert "sizes are estimates; cells are where each name was " \
            "last bound" in text, text
