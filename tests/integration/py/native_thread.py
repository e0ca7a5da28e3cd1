import ctypes
import threading
import time

# malloc as the program binds it (the global scope: a preloaded
# recorder's, else libc's), not libc's own handle, which bypasses it.
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
MALLOC = ctypes.cast(libc.malloc, ctypes.c_void_p).value

# A thread with no Python state at all: pthread_create straight into
# malloc(7777777) (its argument), the way BLAS workers allocate.
pthread = ctypes.CDLL(None)
tid = ctypes.c_ulong()
pthread.pthread_create(ctypes.byref(tid), None, ctypes.c_void_p(MALLOC),
                       ctypes.c_void_p(7777777))
pthread.pthread_join(tid, None)
time.sleep(0.2)
