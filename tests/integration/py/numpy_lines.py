import time

import numpy as np


def load():
    return np.ones(10_000_000)  # line 7: 80,000,000 bytes


def derive(a):
    return a * 2.0  # line 11: 80,000,000 bytes


def grow_list():
    out = []
    for i in range(2_000_000):
        out.append(i)  # line 17: list storage grows by realloc
    return out


a = load()
b = derive(a)
items = grow_list()
time.sleep(0.2)
