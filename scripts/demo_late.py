#!/usr/bin/env python3
"""The late attach, as a user meets it (issues 14 and 16): a Jupyter kernel
that already holds about 1 GiB. First `memprof-bpf names --pid` reads which
names hold it, from outside, with no agent. Then `memprof-bpf --comm
ipykernel` starts in a tmux pane: the live view once the census is
counted, its `n` (the names again, sized by the agent's census blocks),
and the view after `del no_nans` in the kernel: the "(before attach)" row
shrinks. Run by scripts/demo-late (root)."""
import os
import subprocess
import sys
import tempfile
import time

import jupyter_client

COLS, ROWS = int(os.environ.get("COLS", 118)), int(os.environ.get("ROWS", 20))
AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "memprof-bpf")

CELLS = [
    "import numpy as np, pandas as pd\n"
    "rng = np.random.default_rng(0)",
    "df = pd.DataFrame(rng.random((2_000_000, 20)))\n"
    "df.iloc[::10, 3] = np.nan",
    "no_nans = df.dropna()",
    "onehot = pd.get_dummies(pd.Series(rng.integers(0, 40, 2_000_000)))",
    "big = np.ones(256 * 2**20 // 8)",
]


def run(kc, code):
    reply = kc.execute_interactive(code, timeout=120)
    assert reply["content"]["status"] == "ok", reply["content"]


def pane(sock):
    out = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t",
                          "late"], capture_output=True, text=True).stdout
    lines = [line.rstrip() for line in out.splitlines()]
    return "\n".join(line for line in lines if line)


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="memprof-demo-late.")
    os.chmod(tmp, 0o755)
    sock = "memprof-demo-late-%d" % os.getpid()
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env=dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1"))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        for code in CELLS:
            print("In: " + code.splitlines()[0], flush=True)
            run(kc, code)
        pid = km.provisioner.process.pid
        print("\n== memprof-bpf names --pid %d (no agent, no extension)\n"
              % pid, flush=True)
        names = subprocess.run([AGENT, "names", "--pid", str(pid), "-n",
                                "6", "--hints", "3"], capture_output=True,
                               text=True)
        print(names.stdout + names.stderr, flush=True)
        cmd = ("MEMPROF_BPF_STATE_DIR=%s/state LANG=C.UTF-8 %s -D %s "
               "--comm ipykernel" % (tmp, AGENT, tmp))
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s",
                        "late", "-x", str(COLS), "-y", str(ROWS),
                        cmd + "; sleep 600"], check=True)
        if not wait_for(lambda: "(before attach)" in pane(sock) and
                        "reading" not in pane(sock), 60):
            print(pane(sock))
            return 1
        time.sleep(2.5)  # two refreshes
        print("\n== the kernel attached late: its memory, counted\n")
        print(pane(sock))
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "late", "n"])
        if not wait_for(lambda: "hint:" in pane(sock), 30):
            print(pane(sock))
            return 1
        print("\n== n: the kernel's names, from the live view\n")
        print(pane(sock))
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "late",
                        "Escape"])
        run(kc, "del no_nans")
        time.sleep(2.5)
        print("\n== after `del no_nans` in the kernel\n")
        print(pane(sock))
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "late", "s"])
        time.sleep(1.5)
        print("\n== the stacks view (s)\n")
        print(pane(sock))
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", "late", "q"])
        return 0
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"],
                       capture_output=True)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
