#!/usr/bin/env python3
"""Run a notebook in a real Jupyter kernel (nbclient), cell by cell,
printing each cell's first line and its text output: what `make demo`
shows of the notebook side. RUN_NOTEBOOK_HOLD=S keeps the kernel alive S
seconds after the last cell (scripts/demo-top reads the live view then)."""
import os
import sys
import time

import nbclient
import nbformat


def main(path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600)
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            print("In [%d]: %s" % (i + 1, cell.source.splitlines()[0]))
            client.execute_cell(cell, i)
            for out in cell.outputs:
                text = out.get("text") or out.get("data", {}).get(
                    "text/plain", "")
                if text:
                    print("    " + text.rstrip().replace("\n", "\n    "))
        sys.stdout.flush()
        time.sleep(float(os.environ.get("RUN_NOTEBOOK_HOLD", "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
