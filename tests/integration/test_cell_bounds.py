"""Cell boundaries are exact: 50 short cells run back to back in a real
kernel (Debian's ipykernel via nbclient, traced with --comm ipykernel),
with and without the extension. Each cell asks the agent over its query
socket, as %memprof does: the cell before it must already be done, with
the figures it ends with, and each cell's array is exactly its own."""
import json
import re
import signal

import pytest

from conftest import load, wait_for
from test_notebook import (agent, kernel, marker_library, run_until_marked,
                           state_of)

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

CELLS = 50
MiB = 1 << 20
LEFTOVER = 64 << 10


def size(i):
    """Cell i's array: distinct, known, above glibc's mmap threshold."""
    return MiB + i * 4099


# Names exist before the cells run, so a cell's assignment never resizes
# the globals' table (which would be the cell's bytes too). ask() asks
# the agent as %memprof does, and for the block holding the cell's array.
PRELUDE = (
    "import ctypes, json\n"
    "from memprof_bpf import agent\n"
    + "".join("x%d = None\n" % i for i in range(CELLS)) +
    "def ask(x):\n"
    "    view = (ctypes.c_char * 1).from_buffer(x)\n"
    "    addr = ctypes.addressof(view)\n"
    "    del view\n"
    "    doc = agent.query('cells')\n"
    "    hit = agent.lookup([addr])\n"
    "    return json.dumps([doc, hit, agent.last_error])\n")


def cell_source(i, magic):
    """Make the array, then ask the agent (and %memprof) at once."""
    src = ("x{i} = bytearray({n})\n"
           "print('@@' + ask(x{i}).replace('\\n', ' '))\n"
           ).format(i=i, n=size(i))
    if magic:
        src += "%memprof --sort time\n"
    return src


def outputs(cell):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream")


def run(c, nb, source):
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return c.execute_cell(nb.cells[-1], len(nb.cells) - 1)


def run_cells(c, nb, magic):
    """Run the 50 cells; per cell its file, the agent's document as the
    cell saw it, the block holding its array and what %memprof printed."""
    seen = []
    for i in range(CELLS):
        cell = run(c, nb, cell_source(i, magic))
        text = outputs(cell)
        line = next(l for l in text.splitlines() if l.startswith("@@"))
        doc, hit, err = json.loads(line[2:])
        assert doc is not None, err
        seen.append({"doc": doc, "hit": hit[0], "memprof": text,
                     "count": cell.get("execution_count")})
    return seen


def run_of_label(doc, label):
    runs = [r for r in doc["cells"] if r["label"] == label]
    assert len(runs) == 1, (label, doc["cells"])
    return runs[0]


def check_bounds(seen, final, label_of):
    """Cell i asks while running: cell i-1 is done and ended before cell i
    started; its live bytes then are what the final snapshot says (no later
    cell touched them); the array is cell i's own block, exactly."""
    for i, s in enumerate(seen):
        me = run_of_label(s["doc"], label_of(i))
        assert me["finished_at"] is None, me
        hit = s["hit"]
        assert hit and hit["kind"] == "block", hit
        assert hit["size"] == size(i) + 1, (hit, size(i))
        assert hit["cell"] == label_of(i), (hit, label_of(i))
        if i == 0:
            continue
        prev = run_of_label(s["doc"], label_of(i - 1))
        assert prev["finished_at"] is not None, (i, prev)
        assert prev["finished_at"] <= me["started_at"], (prev, me)
        end = run_of_label(final, label_of(i - 1))
        assert prev["finished_at"] == end["finished_at"], (prev, end)
        assert abs(prev["live_bytes"] - end["live_bytes"]) <= \
            0.01 * end["live_bytes"], (prev, end)
        # The array, and what the interpreter keeps of what the cell did
        # first (a cache it filled): a few KiB, named on failure.
        assert size(i - 1) + 1 <= end["live_bytes"] <= \
            size(i - 1) + 1 + LEFTOVER, (end, leftovers(final, end))


def final_cells(tmp_path, pid):
    snap = tmp_path / ("memprof-python3-%d-signal.json.gz" % pid)
    assert wait_for(snap.exists, 30)
    return load(snap)["current"]


def leftovers(final, run):
    """The stacks of run other than its array: where its extra bytes are."""
    out = []
    for st in final["stacks"]:
        if st["cell"] == run["label"] and st["bytes"] < MiB:
            where = [f.get("function") for f in st["frames"][-4:]]
            out.append((st["bytes"], st["count"], where))
    return sorted(out, reverse=True)[:10]


def traced_notebook(tmp_path, extension):
    """The 50 cells in a kernel the agent traces (with the extension's
    markers attached first, or without it); what each cell saw, and the
    agent's final figures after SIGINT."""
    with agent(tmp_path) as (a, state), \
            kernel(state, nb=nbformat.v4.new_notebook()) as (c, nb):
        assert wait_for(lambda: state_of(state, c.pid) is not None, 20)
        if extension:
            run_until_marked(c, nb, str(state), c.pid)
        run(c, nb, PRELUDE)
        seen = run_cells(c, nb, magic=extension)
        pid = c.pid
        a.send_signal(signal.SIGINT)
        a.wait(120)
    return seen, final_cells(tmp_path, pid)


def test_fifty_short_cells_with_the_extension(tmp_path):
    if not marker_library():
        pytest.skip("python/memprof_bpf/_memprof_markers.so not built")
    seen, final = traced_notebook(tmp_path, extension=True)
    counts = [s["count"] for s in seen]
    assert counts == list(range(counts[0], counts[0] + CELLS))

    def label_of(i):
        return "In [%d]" % counts[i]
    check_bounds(seen, final, label_of)
    # %memprof in each cell shows the one before done, never running.
    for i, s in enumerate(seen[1:], 1):
        row = [l for l in s["memprof"].splitlines()
               if l.startswith(label_of(i - 1) + " ")]
        assert len(row) == 1, s["memprof"]
        assert re.search(r"\d+\.\d\d s$", row[0]), row[0]
        mine = [l for l in s["memprof"].splitlines()
                if l.startswith(label_of(i) + " ")]
        assert mine and mine[0].endswith("running"), s["memprof"]
        assert "as the agent last published" not in s["memprof"]


def test_fifty_short_cells_without_the_extension(tmp_path):
    seen, final = traced_notebook(tmp_path, extension=False)
    # Without markers a run is named by its code's file; find them from
    # the block that holds each array.
    files = [s["hit"]["cell"] for s in seen]
    assert len(set(files)) == CELLS, files
    check_bounds(seen, final, lambda i: files[i])
