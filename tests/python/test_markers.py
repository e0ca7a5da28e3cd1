"""The marker library: its USDT notes as a tracer reads them, and the
probes firing under a real uprobe with the semaphore raised by the kernel."""
import errno
import os
import shutil

import pytest

import sdt
from conftest import PYDIR, run_python
from memprof_bpf.markers import Markers


@pytest.fixture(scope="module")
def notes(library):
    return sdt.notes(library)


def test_usdt_notes(library, notes):
    assert sorted(notes) == [("memprof", "cell__end"),
                             ("memprof", "cell__start")]
    start, end = notes[("memprof", "cell__start")], notes[("memprof",
                                                           "cell__end")]
    # int64, pointer, pointer (, int32)
    assert [a.split("@")[0] for a in start["arguments"]] == ["-8", "8", "8"]
    assert [a.split("@")[0] for a in end["arguments"]] == ["-8", "8", "8",
                                                           "-4"]
    assert start["semaphore"] and end["semaphore"]
    assert start["semaphore"] != end["semaphore"]
    probes = [line.split() for line in sdt.readelf("-SW", library)
              .splitlines() if " .probes " in line]
    assert probes, "no .probes section"
    addr, size = int(probes[0][-8], 16), int(probes[0][-6], 16)
    for n in (start, end):
        assert addr <= n["semaphore"] < addr + size


def test_exported_functions(library):
    symbols = sdt.readelf("--dyn-syms", "-W", library)
    for name in ("memprof_cell_start", "memprof_cell_end", "memprof_traced"):
        assert " %s\n" % name in symbols + "\n"
    assert "semaphore" not in symbols  # tracers find them by the notes


def test_untraced_calls_do_nothing(library):
    m = Markers.load(library)
    assert m.traced() == 0
    m.start(1, b"/tmp/x.py", b"x = 1")
    m.end(1, b"/tmp/x.py", b"x = 1", 1)
    m.start(-1, None, None)  # the probes never read their arguments
    assert m.traced() == 0


def counter(library, note):
    try:
        return sdt.uprobe_counter(
            library, sdt.file_offset(library, note["location"]),
            sdt.file_offset(library, note["semaphore"]))
    except (OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno not in (errno.EPERM,
                                                      errno.EACCES,
                                                      errno.ENOENT,
                                                      errno.EINVAL):
            raise
        pytest.skip("no uprobe perf events here: %s" % e)


def test_probes_fire_when_a_tracer_attaches(library, notes):
    """A uprobe with the note's reference counter, opened as libbpf does:
    the kernel raises the semaphore, and each call hits the probe."""
    m = Markers.load(library)
    start = counter(library, notes[("memprof", "cell__start")])
    try:
        assert m.traced() == 1
        for n in range(3):
            m.start(n, b"/tmp/x.py", b"x = 1")
        m.end(2, b"/tmp/x.py", b"x = 1", 1)  # not attached: no hit
        assert sdt.count(start) == 3
        end = counter(library, notes[("memprof", "cell__end")])
        try:
            m.end(2, b"/tmp/x.py", b"x = 1", 0)
            assert (sdt.count(start), sdt.count(end)) == (3, 1)
        finally:
            os.close(end)
    finally:
        os.close(start)
    assert m.traced() == 0


def test_missing_library_says_how_to_build(tmp_path, library):
    shutil.copytree(os.path.join(PYDIR, "memprof_bpf"),
                    str(tmp_path / "memprof_bpf"),
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'memprof_bpf')\n"
            "ip.run_cell('x = 1')\n"
            "print('magic:', 'memprof' in ip.magics_manager.magics['line'])\n")
    out = run_python(code, {"PYTHONPATH": str(tmp_path),
                            "IPYTHONDIR": str(tmp_path / "ipython")})
    lines = out.splitlines()
    assert lines == [
        "memprof-bpf: %s is missing; build it with 'make python' in the "
        "memprof-bpf source tree (cells will not be marked)"
        % (tmp_path / "memprof_bpf" / "_memprof_markers.so"),
        "magic: True"]
