"""The cell-marker library (_memprof_markers.so), loaded with ctypes.

The library holds the memprof:cell__start / cell__end USDT probes. Its
functions check the probes' semaphores in C, so an untraced call costs one
ctypes call and returns.
"""

import ctypes
import os

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "_memprof_markers.so")
BUILD_HINT = ("memprof-bpf: %s is missing; build it with 'make python' in the "
              "memprof-bpf source tree (cells will not be marked)" % LIBRARY)


class Markers:
    """The three exported functions of the marker library."""

    def __init__(self, lib):
        self._lib = lib
        lib.memprof_cell_start.argtypes = (ctypes.c_longlong, ctypes.c_char_p,
                                           ctypes.c_char_p)
        lib.memprof_cell_start.restype = None
        lib.memprof_cell_end.argtypes = (ctypes.c_longlong, ctypes.c_char_p,
                                         ctypes.c_char_p, ctypes.c_int)
        lib.memprof_cell_end.restype = None
        lib.memprof_traced.argtypes = ()
        lib.memprof_traced.restype = ctypes.c_int
        self.start = lib.memprof_cell_start
        self.end = lib.memprof_cell_end
        self.traced = lib.memprof_traced

    @classmethod
    def load(cls, path=LIBRARY):
        """The library at path, or None if it is not there (not built)."""
        if not os.path.exists(path):
            return None
        return cls(ctypes.CDLL(path))
