"""Two buffers of sizes given on the command line, from two functions:
runs with different sizes are what `memprof-bpf diff` compares."""
import sys
import time


def load_a(n):
    return bytearray(n)  # line 8: n + 1 bytes


def load_b(n):
    return bytearray(n)  # line 12: n + 1 bytes


a = load_a(int(sys.argv[1]))
b = load_b(int(sys.argv[2]))
time.sleep(0.2)
