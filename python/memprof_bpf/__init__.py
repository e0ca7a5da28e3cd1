"""memprof-bpf's IPython extension: cell markers and the %memprof magic.

    %load_ext memprof_bpf

marks every cell for the memprof-bpf agent (USDT probes memprof:cell__start
and memprof:cell__end in _memprof_markers.so) and adds %memprof, which
prints this kernel's per-cell table as the agent publishes it, and
`%memprof names`, the notebook's names ranked by what `del` would free
(big_objs(), which works without the extension too).
"""

import argparse
import os
import shlex
import time

from .cells import CellHooks, code_filename, source_head
from .markers import BUILD_HINT, Markers
from .table import report

__all__ = ["load_ipython_extension", "unload_ipython_extension",
           "code_filename", "source_head", "report", "last_cell",
           "big_objs"]
__version__ = "0.1.0"


def __getattr__(name):
    """big_objs, imported when first asked for: `python3 -m
    memprof_bpf.names` (the C agent's command line) must not find the
    module imported already by its package (runpy warns, and the module
    would run twice)."""
    if name == "big_objs":
        from .names import big_objs
        return big_objs
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

#: The latest cell the hooks saw (a cells.Cell), for tests and debugging.
last_cell = None
#: Compute each cell's name and head even while no tracer is attached.
force = bool(os.environ.get("MEMPROF_BPF_FORCE_MARKS"))

ATTACH_WAIT = 1.0  # the agent looks for newly loaded markers every 100 ms
TRACED_WAIT = 10.0  # ... and surely attaches them if it traces this kernel
ATTACH_POLL = 0.02

_loaded = {}  # id(shell) -> (shell, hooks or None)


# ---- the extension -----------------------------------------------------------

class _Hooks(CellHooks):
    """CellHooks that publish the latest cell as memprof_bpf.last_cell and
    read the module's force switch at every cell."""

    def _wanted(self):
        return force or self.markers.traced()

    def pre_run_cell(self, info):
        global last_cell
        CellHooks.pre_run_cell(self, info)
        last_cell = self.last


def load_ipython_extension(ip):
    """%load_ext memprof_bpf: register the hooks and %memprof."""
    unload_ipython_extension(ip)  # %reload_ext: never hook twice
    markers = Markers.load()
    hooks = None
    if markers is None:
        print(BUILD_HINT)
    else:
        hooks = _Hooks(ip, markers)
        ip.events.register("pre_run_cell", hooks.pre_run_cell)
        ip.events.register("post_run_cell", hooks.post_run_cell)
        wait_for_agent(markers)
    ip.register_magic_function(memprof, "line", "memprof")
    _loaded[id(ip)] = (ip, hooks)


def unload_ipython_extension(ip):
    entry = _loaded.pop(id(ip), None)
    if entry is None or entry[1] is None:
        return
    hooks = entry[1]
    for event, callback in (("pre_run_cell", hooks.pre_run_cell),
                            ("post_run_cell", hooks.post_run_cell)):
        try:
            ip.events.unregister(event, callback)
        except ValueError:
            pass


def agent_running(directory=None):
    """Does an agent run for the state dir (its socket accepts, or
    agent.pid names a live process)? See agent.running()."""
    from . import agent
    return agent.running(directory)


def wait_for_agent(markers, timeout=ATTACH_WAIT, traced_timeout=TRACED_WAIT):
    """If an agent runs but has not attached the markers yet, give it up to
    timeout seconds (it scans traced kernels every 100 ms), so that the next
    cell is marked; up to traced_timeout if the agent says it traces this
    kernel (it will attach them: a busy machine only makes it later). True
    once attached."""
    if markers.traced():
        return True
    if not agent_running():
        return False
    start = time.monotonic()
    deadline = start + timeout
    asked = False
    while time.monotonic() < deadline:
        time.sleep(ATTACH_POLL)
        if markers.traced():
            return True
        if not asked:
            asked = True
            from . import agent
            if agent.query("live", timeout=timeout) is not None:
                deadline = max(deadline, start + traced_timeout)
    return False


# ---- %memprof ----------------------------------------------------------------

class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of exiting the kernel."""

    def error(self, message):
        raise _ArgumentError("%memprof: " + message)

    def exit(self, status=0, message=None):
        raise _ArgumentError(message.strip() if message else "")


def _parser():
    p = _Parser(prog="%memprof", add_help=True,
                description="This kernel's memory by notebook cell, as the "
                            "memprof-bpf agent publishes it. "
                            "'%memprof names [-n N]': the notebook's names "
                            "by what del would free.")
    p.add_argument("--sort", choices=("live", "peak", "time"), default="live",
                   help="live or peak during the cell: largest first; time: "
                        "in the order the cells ran (default: live)")
    p.add_argument("--top", type=int, metavar="N",
                   help="show only the first N rows")
    return p


def _names_parser():
    p = _Parser(prog="%memprof names", add_help=True,
                description="The notebook's global names (and the output "
                            "cache) ranked by the bytes that del NAME would "
                            "free, with what they share and with whom.")
    p.add_argument("-n", "--top", type=int, default=20, metavar="N",
                   help="show the first N names (default: 20)")
    p.add_argument("--min-bytes", type=int, default=None, metavar="B",
                   help="leave out names reaching fewer bytes "
                        "(default: 1024)")
    return p


def memprof(line=""):
    """%memprof [--sort live|peak|time] [--top N]: the per-cell table.
    %memprof names [-n N] [--min-bytes B]: big_objs()."""
    try:
        words = shlex.split(line)
        if words and words[0] == "names":
            args = _names_parser().parse_args(words[1:])
        else:
            args = _parser().parse_args(words)
    except (_ArgumentError, ValueError) as e:
        text = str(e)
        if text:
            print(text)
        return None
    if words and words[0] == "names":
        kwargs = {"n": args.top}
        if args.min_bytes is not None:
            kwargs["min_bytes"] = args.min_bytes
        from .names import big_objs
        print(big_objs(**kwargs))
        return None
    print(report(None, args.sort, args.top))
    return None
