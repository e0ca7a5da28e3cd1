"""Python stacks walked in BPF: every allocation attributed to the Python
frames that made it, on CPython 3.8-3.13 (pyenv), Debian's python3.11
(non-PIE, libpython in the executable) and Debian unstable's python3.14 and
python3.15 (stripped, run in their own root with `chroot`)."""
import os
import shutil

import pytest

from conftest import SID_TIMEOUT, load, run_agent

HERE = os.path.dirname(os.path.abspath(__file__))
PYENV = "/root/.pyenv/versions/"
INTERPRETERS = [
    ((3, 8), PYENV + "3.8.18/bin/python3.8"),
    ((3, 9), PYENV + "3.9.18/bin/python3.9"),
    ((3, 10), PYENV + "3.10.13/bin/python3.10"),
    ((3, 11), PYENV + "3.11.7/bin/python3.11"),
    ((3, 11), "/usr/bin/python3.11"),
    ((3, 12), PYENV + "3.12.1/bin/python3.12"),
    ((3, 13), PYENV + "3.13.0/bin/python3.13"),
]
# In the Debian unstable root (scripts/sid-root.sh): the scripts are copied
# there, and the agent sees them at the path the interpreter sees.
SID = [((3, 14), "sid:python3.14"), ((3, 15), "sid:python3.15")]
SID_SCRIPTS = "/tmp/memprof-tests"


def ids(interpreters):
    return [p.replace(PYENV, "pyenv-").split("/bin/")[0].replace(":", "-")
            for _, p in interpreters]


def with_sid(interpreters):
    """Parameters for the host's interpreters and the root's, whose first
    test may wait for the root to be made (minutes, once per machine)."""
    return [pytest.param(v, p, id=i, marks=[pytest.mark.timeout(SID_TIMEOUT)]
                         if p.startswith("sid:") else [])
            for (v, p), i in zip(interpreters, ids(interpreters))]


ALL = with_sid(INTERPRETERS + SID)


def command(request, exe, script):
    """argv running script under exe, and the script's path as the
    interpreter sees it (in the root for sid: interpreters)."""
    if exe.startswith("sid:"):
        root = request.getfixturevalue("sid_root")
        shutil.copytree(os.path.join(HERE, "py"), root + SID_SCRIPTS,
                        dirs_exist_ok=True)
        path = SID_SCRIPTS + "/" + script
        return ["chroot", root, exe[4:], path], path
    if not os.access(exe, os.X_OK):
        pytest.skip(exe + " not installed")
    path = os.path.join(HERE, "py", script)
    return [exe, path], path


def python_frames(stack):
    return [(f["function"], f["line"]) for f in stack["frames"]
            if not f["native"]]


def expected_nested(version):
    # What CPython's own tracebacks say for tests/integration/py/nested.py:
    # qualnames from 3.11, list comprehensions inlined from 3.12.
    if version < (3, 11):
        return [("<module>", 18), ("fill", 12), ("<listcomp>", 13),
                ("make_big", 6)]
    if version == (3, 11):
        return [("<module>", 18), ("Holder.fill", 12),
                ("Holder.fill.<locals>.<listcomp>", 13), ("make_big", 6)]
    return [("<module>", 18), ("Holder.fill", 13), ("make_big", 6)]


def bytearray_block(version, n):
    """The malloc behind bytearray(n): n + NUL, and from 3.15 the header of
    the bytes object it keeps its data in (32 bytes)."""
    return n + (33 if version >= (3, 15) else 1)


# The tests of stacks run on both paths: the in-process recorder (the
# default for a command) and uprobes (what an attached process gets).
PATHS = pytest.mark.parametrize("probes", ["recorder", "uprobe"])


def trace(request, tmp_path, exe, script, flags=(), launcher=(),
          probes=None):
    out = tmp_path / "py.json"
    argv, _ = command(request, exe, script)
    path = ["--probes", probes, "-v"] if probes else []
    r = run_agent(["-o", str(out), *path, *flags, "--", *launcher, *argv])
    assert r.returncode == 0, r.stderr
    if probes:  # the path asked for, not a fallback
        assert ("allocator in the in-process recorder" in r.stderr) == \
            (probes == "recorder"), r.stderr
    snap = load(out)
    assert snap["dropped_events"] == 0
    return snap


@pytest.mark.parametrize("version,exe", ALL)
@PATHS
def test_nested_calls_file_function_line(request, tmp_path, version, exe,
                                         probes):
    snap = trace(request, tmp_path, exe, "nested.py",
                 probes=probes)
    top = snap["peak"]["stacks"][0]
    # Two bytearray(30_000_000) buffers (30,000,001 bytes each).
    assert (top["bytes"], top["count"]) == \
        (2 * bytearray_block(version, 30_000_000), 2)
    assert python_frames(top) == expected_nested(version)
    files = {f["file"] for f in top["frames"] if not f["native"]}
    assert files == {command(request, exe, "nested.py")[1]}
    leaf = top["frames"][-1]
    assert leaf["native"] is True and leaf["module"]


def script_sites(snap, path):
    """{Python frames: (bytes, count)} at the peak for the stacks whose
    innermost Python frame is the script's own code at path. Not the
    libraries' below it: the recorder's 16 bytes of TLS make threading's
    pthread_create allocate 16 bytes more, which can move the peak among
    the interpreter's own small allocations."""
    return {tuple(python_frames(st)): (st["bytes"], st["count"])
            for st in snap["peak"]["stacks"]
            if [f for f in st["frames"] if not f["native"]] and
            [f for f in st["frames"] if not f["native"]][-1]["file"] == path}


@pytest.mark.parametrize("version,exe", with_sid(
    [((3, 11), "/usr/bin/python3.11"), ((3, 13), PYENV +
                                        "3.13.0/bin/python3.13")] + SID))
@pytest.mark.parametrize("script", ["threads.py", "reused_code.py"])
def test_both_paths_see_the_same_sites(request, tmp_path, version, exe,
                                       script):
    # Issue 17's exactness: the recorder and the probes, the same bytes
    # and counts at every Python site of the script.
    path = command(request, exe, script)[1]
    sites = []
    for p in ("recorder", "uprobe"):
        (tmp_path / p).mkdir()
        sites.append(script_sites(trace(request, tmp_path / p, exe, script,
                                        probes=p), path))
    assert sites[0] and sites[0] == sites[1]


# Launchers exec the program in the same process: the agent follows them
# and attaches at Python's own entry point, so nothing needs a census.
DEBIAN_PY = "/usr/bin/python3.11"
LAUNCHERS = [("env",), ("chroot", "/"), ("sh", "-c", 'exec "$0" "$@"')]


@pytest.mark.parametrize("launcher", LAUNCHERS, ids=lambda l: l[0])
def test_launcher_is_followed_to_python(request, tmp_path, launcher):
    snap = trace(request, tmp_path, DEBIAN_PY, "nested.py",
                 launcher=launcher)
    top = snap["peak"]["stacks"][0]
    assert (top["bytes"], top["count"]) == (60000002, 2)
    assert python_frames(top) == expected_nested((3, 11))
    assert snap["comm"] == "python3.11"
    assert snap["census"] is None


# The first statement's allocation carries its Python line, not the
# census's "(before attach)": the probes were in before Python started.
@pytest.mark.parametrize("launcher", LAUNCHERS, ids=lambda l: l[0])
def test_first_statement_behind_a_launcher(request, tmp_path, launcher):
    snap = trace(request, tmp_path, DEBIAN_PY, "first_statement.py",
                 launcher=launcher)
    top = snap["peak"]["stacks"][0]
    assert top["bytes"] == 50000001, top
    assert python_frames(top) == [("<module>", 1)]
    assert not any((f["function"] or "").startswith("(before attach)")
                   for f in top["frames"]), top
    assert snap["census"] is None


# A launcher that cannot start its program just exits: one line says so,
# and its exit code is the agent's, as for any command.
def test_launcher_that_fails_says_so_once(tmp_path):
    r = run_agent(["-o", str(tmp_path / "py.json"), "--", "env",
                   "/nonexistent"])
    assert r.returncode == 127, r.stderr
    ours = [ln for ln in r.stderr.splitlines()
            if ln.startswith("memprof-bpf")]
    assert ours == ["memprof-bpf: 'env' exited with code 127 before "
                    "starting a program: nothing was traced"], r.stderr


@pytest.mark.parametrize("version,exe", ALL)
@PATHS
def test_each_thread_gets_its_own_stack(request, tmp_path, version, exe,
                                        probes):
    snap = trace(request, tmp_path, exe, "threads.py",
                 probes=probes)
    by_leaf = {}
    for st in snap["peak"]["stacks"]:
        fr = python_frames(st)
        if fr:
            by_leaf.setdefault(fr[-1], []).append((st["bytes"], fr))
    (wb, wframes), = by_leaf[("worker_alloc", 8)]
    (mb, mframes), = by_leaf[("main_alloc", 17)]
    assert wb == bytearray_block(version, 10_000_000)
    assert mb == bytearray_block(version, 20_000_000)
    # The worker's stack is its own: thread bootstrap, not <module>.
    assert wframes[0][0] != "<module>" and ("worker", 12) in wframes
    assert mframes[0] == ("<module>", 22)


@pytest.mark.parametrize("version,exe", ALL)
@PATHS
def test_thread_without_python_state_is_a_native_thread(
        request, tmp_path, version, exe, probes):
    snap = trace(request, tmp_path, exe, "native_thread.py",
                 probes=probes)
    st = [s for s in snap["peak"]["stacks"] if s["bytes"] == 7777777]
    assert len(st) == 1, snap["peak"]["stacks"][:3]
    frames = st[0]["frames"]
    # Not someone else's Python stack: a clear root, then the native site.
    assert frames[0]["function"] == "[native thread]"
    assert [f["native"] for f in frames] == [False, True]


def test_unknown_version_degrades_to_native_sites(tmp_path):
    exe = PYENV + "3.7.16/bin/python3.7"
    if not os.access(exe, os.X_OK):
        pytest.skip(exe + " not installed")
    out = tmp_path / "py37.json"
    r = run_agent(["-o", str(out), "--", exe, os.path.join(HERE, "py",
                                                         "nested.py")])
    assert r.returncode == 0, r.stderr
    warn = [l for l in r.stderr.splitlines() if "CPython 3.7" in l]
    assert len(warn) == 1 and "native sites only" in warn[0]
    top = load(out)["peak"]["stacks"][0]
    assert top["bytes"] == 60000002
    assert [f["native"] for f in top["frames"]] == [True]


@pytest.mark.parametrize("depth,frames", [(10, 12), (128, 103)])
def test_depth_is_bounded_and_truncation_marked(tmp_path, depth, frames):
    # deep.py allocates 5,000,001 bytes 101 Python calls deep.
    out = tmp_path / "deep.json"
    r = run_agent(["--py-depth", str(depth), "-o", str(out), "--",
                   "/usr/bin/python3.11", os.path.join(HERE, "py",
                                                       "deep.py")])
    assert r.returncode == 0, r.stderr
    st, = [s for s in load(out)["peak"]["stacks"] if s["bytes"] == 5000001]
    fr = st["frames"]
    assert len(fr) == frames
    assert (fr[0]["function"] == "[truncated]") == (depth < 102)
    assert (fr[-2]["function"], fr[-2]["line"]) == ("rec", 4)


@pytest.mark.parametrize("version,exe", with_sid(
    [((3, 11), "/usr/bin/python3.11")] + SID))
@PATHS
def test_gc_markers_on_debian_python(request, tmp_path, version, exe,
                                     probes):
    # Debian's pythons have the gc__start/gc__done USDT markers: the
    # collection that frees 20 cycles holding 1,000,001 bytes each is seen.
    snap = trace(request, tmp_path, exe, "gc_cycles.py",
                 probes=probes)
    gc = snap["gc"]
    assert gc is not None
    assert gc["collections"] >= 1 and gc["seconds"] > 0
    assert gc["objects_collected"] >= 40
    assert gc["bytes_freed"] >= 20 * 1000001


def test_no_gc_markers_without_usdt(request, tmp_path):
    snap = trace(request, tmp_path, PYENV + "3.12.1/bin/python3.12",
                 "gc_cycles.py")
    assert snap["gc"] is None


@pytest.mark.parametrize("version,exe", with_sid(
    [((3, 11), "/usr/bin/python3.11")] + SID))
@PATHS
def test_import_markers_attribute_module_level_memory(
        request, tmp_path, version, exe, probes):
    # `import heavy_module` allocates 12,345,678 bytes at module level: the
    # import__find__load__* markers put "[import heavy_module]" at the root
    # (3.15 has two sites per marker).
    snap = trace(request, tmp_path, exe, "imports.py",
                 probes=probes)
    st, = [s for s in snap["peak"]["stacks"]
           if s["bytes"] == bytearray_block(version, 12_345_677)]
    assert st["frames"][0]["function"] == "[import heavy_module]"
    assert (st["frames"][-2]["function"], st["frames"][-2]["line"]) == \
        ("<module>", 2)
    after, = [s for s in snap["peak"]["stacks"]
              if s["bytes"] == bytearray_block(version, 3_000_000)]
    assert not after["frames"][0]["function"].startswith("[import")


@pytest.mark.parametrize("version,exe", ALL)
@PATHS
def test_freed_code_objects_never_lend_their_names(request, tmp_path,
                                                   version, exe, probes):
    snap = trace(request, tmp_path, exe, "reused_code.py",
                 probes=probes)
    seen = {}
    for st in snap["peak"]["stacks"]:
        i = st["bytes"] - bytearray_block(version, 199_999)
        if 0 <= i < 40 and st["count"] == 1:
            files = [f["file"] for f in st["frames"] if not f["native"]]
            seen[i] = files[-1]
    assert seen == {i: "/tmp/cells/cell_%03d.py" % i for i in range(40)}


@pytest.mark.parametrize("version,exe", with_sid(
    [((3, 11), "/usr/bin/python3.11")] + SID))
def test_attach_to_a_running_interpreter(request, tmp_path, version, exe):
    attach_to_running(tmp_path, version, command(request, exe,
                                                 "running.py")[0])


def in_container(request, exe, script, mnt):
    """argv for script in a container in miniature: its own mount
    namespace whose root is the Debian unstable root (pivot_root at mnt),
    so /proc/PID/maps names files the host does not have, or other ones
    (its /usr/lib/x86_64-linux-gnu/libc.so.6 is glibc 2.43, ours 2.36)."""
    _, path = command(request, exe, script)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" "$1" && cd "$1" && mkdir -p .old && '
            'pivot_root . .old && exec "$2" "$3"',
            request.getfixturevalue("sid_root"), mnt,
            "/usr/bin/" + exe[4:], path]


@pytest.mark.parametrize("version,exe", with_sid(SID))
def test_attach_to_a_python_in_a_container(request, tmp_path, version, exe):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    attach_to_running(tmp_path, version,
                      in_container(request, exe, "running.py", str(mnt)))


def attach_to_running(tmp_path, version, argv):
    """Attach by --pid to running.py started with argv; its 5 MB line."""
    import subprocess
    import time
    from conftest import AGENT
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    a = None
    try:
        assert p.stdout.readline().strip() == "ready"
        a = subprocess.Popen([AGENT, "--batch", "-i", "0.2", "-D",
                              str(tmp_path), "--pid", str(p.pid)],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while str(p.pid) not in a.stdout.readline():
            assert time.time() < deadline
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "done"
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(10)
        assert a.wait(20) == 0, a.stderr.read()
    finally:
        p.kill()
        if a:
            a.kill()
    snap = load(tmp_path / ("memprof-python%d.%d-%d-exit.json.gz"
                            % (version + (p.pid,))))
    st, = [s for s in snap["peak"]["stacks"] if s["bytes"] >= 5000000]
    assert python_frames(st) == [("<module>", 12), ("grow", 7)]


def test_output_and_exit_code_unchanged(tmp_path):
    import subprocess
    script = os.path.join(HERE, "py", "outputs.py")
    plain = subprocess.run(["/usr/bin/python3.11", script],
                           capture_output=True, text=True)
    traced = run_agent(["-o", str(tmp_path / "o.json"), "--",
                        "/usr/bin/python3.11", script])
    assert plain.returncode == traced.returncode == 7
    assert traced.stdout == plain.stdout
    assert plain.stderr in traced.stderr


@pytest.mark.parametrize("version,exe", with_sid(
    [((3, 11), "/usr/bin/python3.11")] + SID))
def test_numpy_and_list_growth_land_on_their_lines(request, tmp_path,
                                                   version, exe):
    # numpy 1.24 on Debian's 3.11, numpy 2.4 in the root.
    snap = trace(request, tmp_path, exe, "numpy_lines.py")
    script = command(request, exe, "numpy_lines.py")[1]
    mine, right = 0, {}
    for st in snap["peak"]["stacks"]:
        frames = [(f["function"], f["line"]) for f in st["frames"]
                  if not f["native"] and f["file"] == script]
        if not frames:
            continue  # interpreter start-up, numpy's import
        mine += st["bytes"]
        for want in [("load", 7), ("derive", 11), ("grow_list", 16),
                     ("grow_list", 17)]:
            if frames[-1] == want:
                right[want] = right.get(want, 0) + st["bytes"]
    # np.ones runs numpy's own Python code under load(): still line 7.
    assert right[("load", 7)] == 80000000
    assert right[("derive", 11)] == 80000000
    # The list's item array (2,000,000 pointers, over-allocated) grows by
    # realloc at the append; the ints live in pymalloc arenas charged to
    # the loop line that created them (see README, pymalloc).
    assert 16000000 <= right[("grow_list", 17)] <= 20000000
    assert right[("grow_list", 16)] >= 2000000 * 28
    assert sum(right.values()) >= 0.95 * mine


@pytest.mark.parametrize("version,exe", ALL)
@PATHS
def test_gil_released_allocation_keeps_its_stack(request, tmp_path, version,
                                                 exe, probes):
    snap = trace(request, tmp_path, exe, "gil_released.py",
                 probes=probes)
    st, = [s for s in snap["peak"]["stacks"] if s["bytes"] == 9999999]
    assert python_frames(st)[-2:] == [("<module>", 15), ("c_alloc", 12)]


def float_stacks(snap):
    # Stacks whose innermost Python frame is small_objects.py line 5.
    return [s for s in snap["peak"]["stacks"]
            if python_frames(s) and python_frames(s)[-1][1] == 5]


@pytest.mark.parametrize("version,exe", with_sid(
    [v for v in INTERPRETERS if "pyenv" in v[1] and
     v[0] in ((3, 8), (3, 11), (3, 13))]))
def test_pymalloc_counts_small_objects_one_by_one(request, tmp_path, version,
                                                  exe):
    # pyenv's builds name _PyObject_Malloc & co. in .symtab (3.8: 256 KiB
    # arenas, 3.11: 1 MiB, 3.13: 1 MiB with _Py_DebugOffsets; each run
    # costs ~20 s of probe hits, so not every version).
    argv, _ = command(request, exe, "small_objects.py")
    out = tmp_path / "pym.json"
    r = run_agent(["--pymalloc", "-o", str(out), "--", *argv])
    assert r.returncode == 0, r.stderr
    snap = load(out)
    assert snap["dropped_events"] == 0
    # 200,000 floats of 24 bytes; a few come from the float free list.
    floats = [s for s in float_stacks(snap) if s["count"] >= 199_000]
    assert len(floats) == 1, [(s["bytes"], s["count"])
                              for s in float_stacks(snap)]
    assert floats[0]["bytes"] == 24 * floats[0]["count"]
    assert floats[0]["count"] <= 200_000
    # Without --pymalloc the same objects are pymalloc arenas (mmap).
    r = run_agent(["-o", str(out), "--", *argv])
    assert r.returncode == 0, r.stderr
    assert max((s["count"] for s in float_stacks(load(out))),
               default=0) < 1000


@pytest.mark.parametrize("version,exe,why", [
    pytest.param((3, 11), "/usr/bin/python3.11", "has no symbols",
                 id="debian-3.11")] + [
    pytest.param(v, p, "inlines CPython's object allocator", id=p[4:],
                 marks=pytest.mark.timeout(SID_TIMEOUT)) for v, p in SID])
def test_pymalloc_unprobeable_warns_once_and_keeps_arenas(
        request, tmp_path, version, exe, why):
    # Debian's python3.11 is stripped: no _PyObject_Malloc to probe. Its
    # 3.14 and 3.15 give the function through the allocator table, but
    # call it at 24 places and inline it behind a guard at 200: a probe
    # there would miss most objects.
    argv, _ = command(request, exe, "small_objects.py")
    out = tmp_path / "deb.json"
    r = run_agent(["--pymalloc", "-o", str(out), "--", *argv])
    assert r.returncode == 0, r.stderr
    warn = [l for l in r.stderr.splitlines() if "--pymalloc" in l]
    assert len(warn) == 1 and "PYTHONMALLOC=malloc" in warn[0], r.stderr
    assert why in warn[0], warn
    line5 = sum(s["bytes"] for s in float_stacks(load(out)))
    assert line5 >= 24 * 200_000  # arenas at least hold the floats
    # The documented way out: PYTHONMALLOC=malloc, every object a malloc.
    r = run_agent(["-o", str(out), "--", *argv],
                  env=dict(os.environ, PYTHONMALLOC="malloc"))
    assert r.returncode == 0, r.stderr
    floats = [s for s in float_stacks(load(out)) if s["count"] >= 199_000]
    assert len(floats) == 1 and floats[0]["bytes"] == 24 * floats[0]["count"]