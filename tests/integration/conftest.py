"""Helpers for the integration tests: run the built agent as root against
real processes and read the snapshots it writes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
from memprof_bpf import snapshot  # noqa: E402  (the package's own reader)
AGENT = os.path.join(ROOT, "memprof-bpf")
RECORDER = os.path.join(ROOT, "build", "libmemprof-recorder.so")
PROGS = os.path.join(ROOT, "build", "progs")


def prog(name):
    return os.path.join(PROGS, name)


def run_agent(args, timeout=60, **kw):
    """Run the agent to completion; returns CompletedProcess (text)."""
    return subprocess.run([AGENT] + args, capture_output=True, text=True,
                          timeout=timeout, **kw)


def load(path):
    """A snapshot (either version, plain or gzipped) in version 1's
    shape, or any other JSON file as it is."""
    return snapshot.load(path)


def by_function(section):
    """{function name: (bytes, count)} for single-frame native stacks."""
    out = {}
    for st in section["stacks"]:
        fn = st["frames"][-1]["function"]
        b, c = out.get(fn, (0, 0))
        out[fn] = (b + st["bytes"], c + st["count"])
    return out


def split_census(by_fn):
    """by_function's entries: (after attach, the census's "(before
    attach) ..." sites)."""
    old = {k: v for k, v in by_fn.items() if k.startswith("(before attach)")}
    return {k: v for k, v in by_fn.items() if k not in old}, old


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


@pytest.fixture(scope="session", autouse=True)
def built():
    assert os.geteuid() == 0, "integration tests load BPF: run as root"
    assert os.access(AGENT, os.X_OK), "run make first"


# The first test that needs the Debian unstable root may wait for it to be
# made (make test starts scripts/sid-root.sh early, in the background).
SID_TIMEOUT = 1500


@pytest.fixture(scope="session")
def sid_root():
    """Debian unstable's root (glibc 2.43), made once per machine by
    scripts/sid-root.sh (a few minutes from scratch, then cached)."""
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "sid-root.sh")],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    root = r.stdout.strip().splitlines()[-1]
    assert os.path.exists(os.path.join(root, "lib64",
                                       "ld-linux-x86-64.so.2")), root
    # The recorder's library where LD_PRELOAD names it, inside the root
    # too (as an admin bind-mounts it into a container): commands run in
    # the root record in-process, as on the host.
    inside = root + RECORDER
    os.makedirs(os.path.dirname(inside), exist_ok=True)
    shutil.copy2(RECORDER, inside)
    return root


class Sid:
    """Kernels in the Debian unstable root: the extension, the agent's
    state directory and the kernels' connection files live under a
    folder of the root, which the kernel sees at its path inside."""

    def __init__(self, root, python):
        self.root, self.python = root, python
        self.inside = tempfile.mkdtemp(prefix="memprof-nb-",
                                       dir=root + "/tmp")[len(root):]
        shutil.copytree(os.path.join(ROOT, "python"), self.host("python"),
                        ignore=shutil.ignore_patterns("*.c", "*.o"))
        # The kernel: sh copies its connection file into the root, where
        # chroot then execs the interpreter (one pid throughout).
        run = 'exec chroot "$0" "$1" -m ipykernel_launcher -f "$3/c-$$.json"'
        spec = self.host("jupyter", "kernels", "sid")
        os.makedirs(spec)
        with open(os.path.join(spec, "kernel.json"), "w") as f:
            json.dump({"display_name": python, "language": "python",
                       "argv": ["/bin/sh", "-c",
                                'cp "$2" "$0$3/c-$$.json" && ' + run,
                                root, python, "{connection_file}",
                                self.inside]}, f)

    def host(self, *parts):
        return os.path.join(self.root + self.inside, *parts)

    def cleanup(self):
        shutil.rmtree(self.host(), ignore_errors=True)


@pytest.fixture(params=[
    pytest.param(None, id="debian-3.11"),
    pytest.param("python3.14", id="sid-python3.14",
                 marks=pytest.mark.timeout(SID_TIMEOUT))])
def sid(request):
    """None for Debian's kernel, else a Sid (ipykernel 7 in the root)."""
    yield from sid_of(request)


def sid_of(request):
    """A fixture's body: None for request.param None, else a Sid running
    request.param (a python in the root), removed afterwards."""
    if request.param is None:
        yield None
        return
    s = Sid(request.getfixturevalue("sid_root"), request.param)
    yield s
    s.cleanup()
