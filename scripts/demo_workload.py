"""A notebook-like workload for the demo: data piles up step by step, an
intermediate copy makes the peak, then part of it is dropped."""
import time

import numpy as np


def load_data(n):
    # 8 bytes x n float64: the "raw" table
    return np.random.default_rng(0).random(n)


def feature_table(raw):
    # three derived columns, kept: memory keeps piling up
    return [raw * 2.0, np.sqrt(raw), raw ** 2]


def normalise(cols):
    # a stacked temporary copy: the peak, then freed
    stacked = np.stack(cols)
    return (stacked - stacked.mean()) / stacked.std()


def main():
    raw = load_data(5_000_000)          # 40 MB
    time.sleep(1.5)
    cols = feature_table(raw)           # +120 MB
    time.sleep(1.5)
    z = normalise(cols)                 # +120 MB result, +temporaries
    time.sleep(1.5)
    del cols                            # -120 MB
    names = [f"row-{i}" for i in range(300_000)]  # Python objects
    time.sleep(1.5)
    print(f"done: {z.shape}, {len(names)} names")


main()
