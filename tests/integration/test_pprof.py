"""pprof output (issue 18): the agent's -o FILE.pb.gz and `report FILE
--format pprof`, opened by Go's own `go tool pprof` (golang-go, offline):
the same totals, functions and bytes as the JSON snapshot and `report`."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import AGENT, load, prog, run_agent
from test_report import fmt_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3.11"
# `go tool pprof -top -unit=B` rows: flat, flat%, sum%, cum, cum%, name
# (a zero is "0", not "0B").
TOP_ROW = re.compile(r"^\s*(\d+)B?\s+\S+%\s+\S+%\s+(\d+)B?\s+\S+%\s+(.+)$")

pytestmark = pytest.mark.skipif(shutil.which("go") is None,
                                reason="go tool pprof: install golang-go")


def go_top(path, tmp, *flags):
    """go tool pprof -top in bytes: (total, {function: (flat, cum)})."""
    env = dict(os.environ, HOME=str(tmp), GOCACHE=str(tmp / "gocache"),
               GOPATH=str(tmp / "gopath"), GOFLAGS="-mod=mod",
               GOPROXY="off")
    r = subprocess.run(["go", "tool", "pprof", "-top", "-unit=B",
                        "-sample_index=inuse_space"] + list(flags)
                       + [str(path)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    total = re.search(r"of (\d+)B total", r.stdout)
    assert total, r.stdout
    rows = {}
    for line in r.stdout.splitlines():
        m = TOP_ROW.match(line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return int(total.group(1)), rows


def review(*args, stdout=subprocess.PIPE, **kw):
    return subprocess.run([AGENT] + [str(a) for a in args], stdout=stdout,
                          stderr=subprocess.PIPE, timeout=30, **kw)


@pytest.fixture(scope="module")
def allocs(tmp_path_factory):
    """The same program written as JSON and, by the agent, as pprof."""
    d = tmp_path_factory.mktemp("pprof")
    for name in ("allocs.json", "allocs.pb.gz"):
        r = run_agent(["-o", str(d / name), "--", prog("allocs")])
        assert r.returncode == 0, r.stderr
    return d


def test_agent_pprof_matches_snapshot_and_report(allocs, tmp_path):
    snap = load(allocs / "allocs.json")
    pb = allocs / "allocs.pb.gz"
    with open(pb, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # -o FILE.pb.gz meant pprof
    total, rows = go_top(pb, tmp_path)
    assert total == snap["peak"]["bytes"] == 103324
    # report's stack table, row for row: function and bytes.
    r = review("report", allocs / "allocs.json", text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    table = [l.split() for l in lines[lines.index("") + 3:]]
    assert len(table) == 10
    for row in table:
        fn, shown = row[-2], " ".join(row[1:3])
        assert fmt_bytes(rows[fn][0]) == shown, (fn, rows[fn], row)
    # Exact bytes: the folded stacks of the same file.
    f = review("report", allocs / "allocs.json", "--format", "folded",
               text=True)
    folded = {l.rsplit(" ", 1)[0].split(" (")[0]: int(l.rsplit(" ", 1)[1])
              for l in f.stdout.splitlines()}
    assert {fn: flat for fn, (flat, _) in rows.items()} == folded


def test_report_pprof_round_trip(allocs, tmp_path):
    out = tmp_path / "x.pb.gz"
    with open(out, "wb") as f:
        r = review("report", allocs / "allocs.json", "--format", "pprof",
                   stdout=f)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert go_top(out, tmp_path) == go_top(allocs / "allocs.pb.gz",
                                           tmp_path)
    # The current section rides along: the 32 KiB mmap still mapped.
    _, now = go_top(out, tmp_path, "-sample_index=current_space")
    assert now["do_mmap"][0] == 32768


def test_report_pprof_refuses_a_terminal(allocs):
    master, slave = os.openpty()
    try:
        r = review("report", allocs / "allocs.json", "--format", "pprof",
                   stdout=slave, text=True)
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "FILE.pb.gz" in r.stderr


def test_python_frames_lines_and_cum(tmp_path):
    """Python frames are pprof functions with their files and lines."""
    snap = tmp_path / "nested.json"
    r = run_agent(["-o", str(snap), "--", PY,
                   os.path.join(HERE, "py", "nested.py")])
    assert r.returncode == 0, r.stderr
    out = tmp_path / "nested.pb.gz"
    with open(out, "wb") as f:
        assert review("report", snap, "--format", "pprof",
                      stdout=f).returncode == 0
    total, rows = go_top(out, tmp_path)
    assert total == load(snap)["peak"]["bytes"]
    # Two bytearray(30_000_000) from make_big (nested.py:6), below it;
    # "<module>" kept whole (pprof would cut it as a C++ template).
    _, cum = go_top(out, tmp_path, "-cum")
    assert cum["make_big"][1] >= 60000002
    assert cum["<module>"][1] >= 60000002
    _, lines = go_top(out, tmp_path, "-cum", "-lines")
    assert lines["make_big %s:6" % os.path.join(HERE, "py", "nested.py")][1] \
        >= 60000002, sorted(lines)
