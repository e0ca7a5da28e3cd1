"""Run a bcc tool (memleak-bpfcc ...) as a newer bcc would: Debian 12's
bcc 0.26 calls bpf_attach_uprobe(fd, type, name, path, addr, pid) through
ctypes without its seventh argument, the USDT reference counter offset, so
the C function reads a stray value (6 here) for plain uprobes. The kernel
keeps one uprobe per address and refuses a second user with another offset:
such a bcc tool cannot attach where another tracer is, nor another tracer
where it is. Passing 0, as bcc itself does in later releases, is all this
changes.

    python3 scripts/bcc_fixed.py /usr/sbin/memleak-bpfcc -p PID 1

Used by scripts/bench (memleak, a peer) and the integration tests (memleak
beside a running agent).
"""
import ctypes as ct
import runpy
import signal
import sys

from bcc import libbcc

# Started in the background by a script, it inherits SIGINT ignored: the
# tool must still stop (and detach) on Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)

_attach = libbcc.lib.bpf_attach_uprobe
_attach.argtypes = [ct.c_int, ct.c_int, ct.c_char_p, ct.c_char_p,
                    ct.c_ulonglong, ct.c_int, ct.c_uint32]


def _attach_uprobe(*args):
    return _attach(*args, 0) if len(args) == 6 else _attach(*args)


libbcc.lib.bpf_attach_uprobe = _attach_uprobe
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
