/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython's small-object arenas found by their pools' shape (16 KiB pools
 * in 1 MiB arenas since 3.10, 4 KiB in 256 KiB before): each arena is a
 * CENSUS_PYTHON region, claimed so that it is not "other" memory.
 */
#ifndef MEMPROF_CENSUS_PYMALLOC_H
#define MEMPROF_CENSUS_PYMALLOC_H

#include "census.h"
#include "vmem.h"

/* 0, or -errno only when the process is gone. */
int pymalloc__census(struct vmem *m, struct census *c);

#endif
