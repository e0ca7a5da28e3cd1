"""Helpers for the USDT tests: the library's stapsdt notes (readelf -n) and
a uprobe counter opened with perf_event_open, no tracer needed."""

import ctypes
import os
import re
import subprocess

NOTE = re.compile(
    r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), "
    r"Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ([^\n]*)")


def readelf(*args):
    return subprocess.run(["readelf"] + list(args), check=True,
                          capture_output=True, text=True).stdout


def notes(path):
    """{(provider, name): {location, base, semaphore, arguments}}."""
    out = {}
    for m in NOTE.finditer(readelf("-n", "-W", path)):
        out[(m.group(1), m.group(2))] = {
            "location": int(m.group(3), 16),
            "base": int(m.group(4), 16),
            "semaphore": int(m.group(5), 16),
            "arguments": m.group(6).split(),
        }
    return out


def file_offset(path, vaddr):
    """The file offset of virtual address vaddr (from the LOAD segments)."""
    for line in readelf("-lW", path).splitlines():
        f = line.split()
        if f[:1] == ["LOAD"]:
            off, va, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if va <= vaddr < va + filesz:
                return vaddr - va + off
    raise ValueError("0x%x is in no LOAD segment of %s" % (vaddr, path))


class _Attr(ctypes.Structure):
    # struct perf_event_attr up to config2; the rest stays zero (size 128).
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("config", ctypes.c_uint64), ("sample_period", ctypes.c_uint64),
                ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("wakeup_events", ctypes.c_uint32),
                ("bp_type", ctypes.c_uint32), ("config1", ctypes.c_uint64),
                ("config2", ctypes.c_uint64), ("_rest", ctypes.c_uint8 * 56)]


PMU = "/sys/bus/event_source/devices/uprobe/type"
SYS_perf_event_open = 298  # x86_64


def uprobe_counter(path, offset, ref_ctr_offset=0, pid=None):
    """An fd counting hits of a uprobe at file offset in path (in process
    pid), with a USDT semaphore at ref_ctr_offset raised while it is open,
    as libbpf attaches USDT probes. Raises OSError if the kernel refuses."""
    with open(PMU) as f:
        pmu = int(f.read())
    c_path = ctypes.create_string_buffer(os.fsencode(path))
    attr = _Attr(type=pmu, size=ctypes.sizeof(_Attr),
                 config=ref_ctr_offset << 32,
                 config1=ctypes.addressof(c_path), config2=offset)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(SYS_perf_event_open, ctypes.byref(attr),
                      os.getpid() if pid is None else pid, -1, -1, 0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def count(fd):
    return int.from_bytes(os.read(fd, 8), "little")
