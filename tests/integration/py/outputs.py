import sys

data = [bytearray(1000) for _ in range(100)]
print("out:", len(data), sum(len(d) for d in data))
print("err: fine", file=sys.stderr)
sys.exit(7)
