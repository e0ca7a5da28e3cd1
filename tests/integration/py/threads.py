import threading
import time

held = []


def worker_alloc():
    held.append(bytearray(10_000_000))  # line 8


def worker():
    worker_alloc()
    time.sleep(0.5)


def main_alloc():
    held.append(bytearray(20_000_000))  # line 17


t = threading.Thread(target=worker)
t.start()
main_alloc()
t.join()
time.sleep(0.2)
