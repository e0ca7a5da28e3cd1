"""Marking notebook cells: IPython's pre/post_run_cell hooks fire the probes.

The agent ties a cell's allocations to the cell by its code object's
co_filename, so the marker must carry exactly the name the shell compiles
the cell under. Nothing about the name is computed while no tracer is
attached: untraced, a hook is a ctypes call and a list append.
"""

import os

HEAD_BYTES = 100


class Cell:
    """One cell run as the hooks saw it (execution_count, code_filename,
    source_head are None until a tracer asks for them)."""

    __slots__ = ("info", "execution_count", "code_filename", "source_head",
                 "success")

    def __init__(self, info, execution_count):
        self.info = info
        self.execution_count = execution_count
        self.code_filename = None
        self.source_head = None
        self.success = None

    def __repr__(self):
        return ("Cell(execution_count=%r, code_filename=%r, source_head=%r, "
                "success=%r)" % (self.execution_count, self.code_filename,
                                 self.source_head, self.success))


def source_head(raw_cell, limit=HEAD_BYTES):
    """The first non-blank line of raw_cell, stripped, cut to at most limit
    bytes of UTF-8 on a character boundary ('' for a blank cell)."""
    for line in raw_cell.splitlines():
        line = line.strip()
        if line:
            break
    else:
        return ""
    data = line.encode("utf-8", "replace")
    if len(data) <= limit:
        return line
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # continuation byte
        cut -= 1
    return data[:cut].decode("utf-8").rstrip()


def code_filename(shell, raw_cell, number, shell_futures=True):
    """The co_filename the shell gives the code of raw_cell run as number.

    IPython's run_cell_async names the cell with
    compiler.cache(transform_cell(raw), execution_count, raw_code=raw), and
    cache() takes the name from get_code_name(raw, transformed, number):
    ipykernel's compiler hashes the raw cell into
    <tmp>/ipykernel_<pid>/<murmur2>.py, terminal IPython names it
    <ipython-input-N-<sha1 of the transformed cell>>.
    """
    try:
        transformed = shell.transform_cell(raw_cell)
    except Exception:  # IPython then compiles the raw cell (and fails)
        transformed = raw_cell
    compiler = shell.compile if shell_futures else shell.compiler_class()
    if hasattr(compiler, "get_code_name"):
        return compiler.get_code_name(raw_cell, transformed, number)
    from IPython.core.compilerop import code_name  # IPython < 7.24
    return code_name(transformed, number)


def ipython_counts_first():
    """Does this IPython raise execution_count before pre_run_cell? 9.x
    does (run_cell_async counts, then triggers); 8.x counts at the end."""
    try:
        import IPython
    except ImportError:
        return False
    return tuple(IPython.version_info[:1]) >= (9,)


def _encode(text):
    return os.fsencode(text) if text is not None else b""


class CellHooks:
    """pre_run_cell / post_run_cell callbacks for one shell.

    Cells can nest (a cell calling shell.run_cell), so the runs in progress
    are a stack matched by their ExecutionInfo. A tracer that attaches in
    the middle of a cell still gets that cell's end marker, with the name
    computed then from what pre_run_cell recorded.
    """

    def __init__(self, shell, markers, force=False, counts_first=None):
        self.shell = shell
        self.markers = markers
        self.force = force  # compute names even untraced (tests, debugging)
        if counts_first is None:
            counts_first = ipython_counts_first()
        self.counts_first = counts_first
        self.running = []
        self.last = None
        self.loaded_in = False  # the loading cell's end was announced

    def _wanted(self):
        return self.force or self.markers.traced()

    def _describe(self, cell):
        if cell.code_filename is None:
            info = cell.info
            cell.code_filename = code_filename(
                self.shell, info.raw_cell, cell.execution_count,
                getattr(info, "shell_futures", True))
            cell.source_head = source_head(info.raw_cell)

    def number(self, info):
        """The number run_cell_async passes to compiler.cache(): IPython 9
        has already counted a cell that stores history by pre_run_cell."""
        n = self.shell.execution_count
        if self.counts_first and getattr(info, "store_history", True):
            n -= 1
        return n

    def pre_run_cell(self, info):
        cell = Cell(info, self.number(info))
        self.running.append(cell)
        self.last = cell
        if self._wanted():
            self._describe(cell)
            self.markers.start(cell.execution_count,
                               _encode(cell.code_filename),
                               cell.source_head.encode("utf-8", "replace"))

    def post_run_cell(self, result):
        cell = self._finished(result)
        if cell is None:
            return
        cell.success = bool(getattr(result, "success", False))
        if result is not None and result.execution_count is not None:
            cell.execution_count = result.execution_count
        if self._wanted():
            self._describe(cell)
            self.markers.end(cell.execution_count, _encode(cell.code_filename),
                             cell.source_head.encode("utf-8", "replace"),
                             int(cell.success))

    def _finished(self, result):
        """Pop the run result belongs to. An empty cell gets a post_run_cell
        without a pre_run_cell: it matches nothing and is ignored. So does
        the cell that loaded this extension, which started before its hooks
        existed; it gets an end marker, so the agent can name it too."""
        info = getattr(result, "info", None)
        if result is None:  # run_cell raised before making a result
            return self.running.pop() if self.running else None
        for i in range(len(self.running) - 1, -1, -1):
            if self.running[i].info is info:
                cell = self.running[i]
                del self.running[i:]
                return cell
        raw = getattr(info, "raw_cell", None)
        if not self.loaded_in and raw and raw.strip() and \
                result.execution_count is not None:
            self.loaded_in = True
            return Cell(info, result.execution_count)
        return None
