"""Target process for walker.py: parks threads in known Python stacks.

Prints one JSON line per thread: ident (== pthread_self() == fs_base on
x86-64 glibc), native_id (tid), and the expected stack from traceback
(innermost last), then sleeps until killed.
"""
import json, sys, threading, time, traceback

ready = threading.Barrier(4)
report_lock = threading.Lock()
reports = []


def report():
    st = traceback.extract_stack(sys._getframe(1))
    with report_lock:
        reports.append({
            "name": threading.current_thread().name,
            "ident": threading.get_ident(),
            "native_id": threading.get_native_id() if hasattr(threading, "get_native_id") else None,
            "stack": [[fs.filename, fs.name, fs.lineno] for fs in st],
        })


class Sleeper:
    def deep(self, n):
        if n:
            return self.deep(n - 1)
        report(); ready.wait()
        time.sleep(3600)          # GIL released here


def spin_inner():
    report(); ready.wait()
    x = 0
    while True:                   # GIL held, running Python code
        x += 1


def spin_outer():
    return spin_inner()


def gen():
    report(); ready.wait()
    yield time.sleep(3600)


def in_generator():
    for _ in gen():
        pass


def main_wait():
    lam = lambda: (report(), ready.wait(), time.sleep(3600))
    lam()


threading.Thread(target=lambda: Sleeper().deep(3), name="sleeper", daemon=True).start()
threading.Thread(target=spin_outer, name="spinner", daemon=True).start()
threading.Thread(target=in_generator, name="generator", daemon=True).start()
t = threading.Thread(target=lambda: (time.sleep(0.5), print(json.dumps(reports), flush=True)), daemon=True)
t.start()
main_wait()
