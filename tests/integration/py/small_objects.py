import time


def make_floats(n):
    return [float(i) for i in range(n)]  # line 5: n float objects, 24 B each


xs = make_floats(200_000)
time.sleep(0.2)
