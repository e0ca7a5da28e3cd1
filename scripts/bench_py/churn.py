"""Workload (b) of scripts/bench: allocation churn.

bytes and bytearray objects of random sizes, uniform between 600 B and
64 KiB (all above pymalloc's 512-byte limit, so each is one malloc and one
free in glibc), replace one another in a ring of SLOTS slots. Every block
is written (b"x" * n, or a zeroed bytearray with a 16-byte header) and
read (one byte; 7 blocks in 8 are also checksummed whole with crc32), so
allocation is not the only work, as in a program that builds buffers and
uses them. Timed section: ROUNDS replacements.
"""
import random
import sys
import zlib

import benchlib

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 450_000
SLOTS = 4096
LO, HI = 600, 64 * 1024

rnd = random.Random(1)
SIZES = [rnd.randint(LO, HI) for _ in range(65536)]
MASK = len(SIZES) - 1
ring = [None] * SLOTS


def churn(rounds):
    sizes, mask, r, crc = SIZES, MASK, ring, zlib.crc32
    acc = 0
    for i in range(rounds):
        n = sizes[i & mask]
        if i & 1:
            b = bytearray(n)
            b[:16] = b"0123456789abcdef"
        else:
            b = b"x" * n
        acc += b[n >> 1]
        if i & 7 != 7:
            acc += crc(b)
        r[(i * 7919) & (SLOTS - 1)] = b
    return acc & 0xFFFFFFFF


benchlib.run(lambda: churn(ROUNDS), warmup=lambda: churn(2 * SLOTS))
