import sys

held = []


def grow():
    held.append(bytes(5_000_000))  # line 7


print("ready", flush=True)
sys.stdin.readline()
grow()
print("done", flush=True)
sys.stdin.readline()
