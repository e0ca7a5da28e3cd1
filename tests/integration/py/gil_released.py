import ctypes
import time

# ctypes releases the GIL around foreign calls: this malloc runs in a
# thread without the GIL (3.12+'s "current tstate" is NULL). CDLL(None):
libc = ctypes.CDLL(None)  # malloc as bound: a preloaded recorder's
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]


def c_alloc():
    return libc.malloc(9_999_999)  # line 12


p = c_alloc()
time.sleep(0.2)
