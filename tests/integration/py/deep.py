import time
def rec(n):
    if n == 0:
        return bytearray(5_000_000)
    return rec(n - 1)
x = rec(100)
time.sleep(0.1)
