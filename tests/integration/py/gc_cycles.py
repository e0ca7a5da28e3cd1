import gc
import time

gc.disable()


class Node:
    pass


def make_cycles(n):
    for _ in range(n):
        a, b = Node(), Node()
        a.peer, b.peer = b, a
        a.buf = bytearray(1_000_000)  # unreachable once the loop moves on


make_cycles(20)      # 20 x 1,000,001 bytes held only by cycles
found = gc.collect()  # frees them all
time.sleep(0.2)
