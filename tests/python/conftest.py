"""Shared set-up for the python/ package's tests: import paths, the marker
library (built with 'make python'), a real ipykernel on Debian's python3."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYDIR = os.path.join(ROOT, "python")
LIBRARY = os.path.join(PYDIR, "memprof_bpf", "_memprof_markers.so")
KERNEL_PYTHON = "/usr/bin/python3"  # Debian's: the one with ipykernel

for path in (PYDIR, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def library():
    """The marker library, built (or brought up to date) by 'make python'."""
    r = subprocess.run(["make", "-s", "-C", ROOT, "python"],
                       capture_output=True, text=True)
    if r.returncode or not os.path.exists(LIBRARY):
        pytest.fail("make python failed:\n" + r.stdout + r.stderr)
    return LIBRARY


def run_python(code, env=None, timeout=30):
    """Run code under Debian's python3 with python/ importable; stdout."""
    e = dict(os.environ, PYTHONPATH=PYDIR, PYDEVD_DISABLE_FILE_VALIDATION="1")
    e.update(env or {})
    r = subprocess.run([KERNEL_PYTHON, "-c", code], capture_output=True,
                       text=True, env=e, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout
