"""Grow in 16 MiB steps until the kernel's OOM killer ends this process.

With "wait", first say "ready" and wait for a line on stdin (an agent
attaches with --pid meanwhile)."""
import sys

held = []
if sys.argv[1:] == ["wait"]:
    print("ready", flush=True)
    sys.stdin.readline()
while True:
    held.append(bytearray(16 << 20))  # the allocating line
