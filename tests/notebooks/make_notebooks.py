"""Write the notebooks the integration tests run (kept in git; re-run this
after editing a cell). Every cell ends by printing its own code filename,
so the test knows which cell run is which without the extension."""
import nbformat

FILE = "print(FILE())"
CELLS = [
    "import os, sys\n"
    "import numpy as np\n"
    "FILE = lambda: sys._getframe(1).f_code.co_filename\n"
    "print(os.getpid(), FILE())",
    "keep = np.ones(16 * 1024 * 1024)  # 128 MiB, kept\n" + FILE,
    "tmp = np.ones(32 * 1024 * 1024)  # 256 MiB, then deleted\n"
    "del tmp\n" + FILE,
    "def make(n):\n"
    "    return bytearray(n)  # defined here, called from the next cell\n"
    + FILE,
    "b = make(50_000_000)  # 50 MB by a function of the cell above\n" + FILE,
    "keep = np.ones(16 * 1024 * 1024)  # 128 MiB, kept\n" + FILE,
]


def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


if __name__ == "__main__":
    write("cells.ipynb", CELLS)
