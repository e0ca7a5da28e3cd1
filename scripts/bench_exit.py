"""How long memprof-bpf takes to stop (scripts/bench-exit): a Jupyter
kernel holding a pandas frame is traced with --comm ipykernel; then SIGINT,
and the wall time until the agent has exited, split by the agent's own -v
lines into writing the final snapshots and removing the probes after them.
Alone, and after other tracers came and went on the same kernel (a second
memprof-bpf, a system-wide bpftrace uprobe on malloc). Prints one Markdown
table row per case: the median of REPS runs."""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import nbclient
import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "memprof-bpf")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
REPS = int(os.environ.get("REPS", "3"))
CELL = ("import numpy as np, pandas as pd\n"
        "df = pd.DataFrame(np.ones((1_000_000, 8)))\n"
        "big = df.copy()")


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def others_come_and_go(pid, tmp):
    """A second agent attaches to the kernel and stops; then bpftrace."""
    state = os.path.join(tmp, "second")
    p = subprocess.Popen([AGENT, "--batch", "-D", tmp, "--comm", "ipykernel"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, MEMPROF_BPF_STATE_DIR=state))
    wait_for(lambda: os.path.exists(os.path.join(state, "%d.json" % pid)),
             30)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    b = subprocess.Popen(["bpftrace", "-B", "none", "-e",
                          'BEGIN { printf("ready\\n"); } uprobe:%s:malloc '
                          '{ @n = count(); }' % LIBC],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    b.stdout.readline()
    time.sleep(1)
    b.send_signal(signal.SIGINT)
    b.communicate(timeout=60)


def one_run(others):
    """(total, snapshots, probes after snapshots) seconds for one stop."""
    tmp = tempfile.mkdtemp(prefix="memprof-bench-exit-")
    state = os.path.join(tmp, "state")
    err = open(os.path.join(tmp, "agent.err"), "w+")
    agent = subprocess.Popen([AGENT, "-v", "--batch", "-D", tmp, "--comm",
                              "ipykernel"], stdout=subprocess.DEVNULL,
                             stderr=err,
                             env=dict(os.environ, MEMPROF_BPF_STATE_DIR=state))
    wait_for(lambda: os.path.exists(os.path.join(state, "agent.pid")), 30)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    c = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120)
    with c.setup_kernel(env=dict(os.environ,
                                 PYDEVD_DISABLE_FILE_VALIDATION="1")):
        pid = c.km.provisioner.process.pid
        wait_for(lambda: os.path.exists(os.path.join(state, "%d.json" % pid)),
                 30)
        c.execute_cell(nb.cells[0], 0)
        if others:
            others_come_and_go(pid, tmp)
        start = time.monotonic()
        agent.send_signal(signal.SIGINT)
        agent.wait(120)
        total = time.monotonic() - start
    err.seek(0)
    text = err.read()
    snaps = float(re.search(r"final snapshots written in ([\d.]+) s",
                            text).group(1))
    after = float(re.search(r"probes removed ([\d.]+) s after", text)
                  .group(1))
    size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
               if f.endswith(".json"))
    subprocess.run(["rm", "-rf", tmp])
    return total, snaps, after, size


def main():
    for others in (False, True):
        runs = [one_run(others) for _ in range(REPS)]
        med = [statistics.median(r[i] for r in runs) for i in range(4)]
        print("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.0f MB |" % (
            "after a second agent and bpftrace came and went" if others
            else "alone", med[0], med[1], med[2], med[0] - med[1],
            med[3] / 1e6))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
