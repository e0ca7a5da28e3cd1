/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The rest of the anonymous private memory (another allocator's pools,
 * numpy's huge pages...): what no walker claimed, minus thread stacks,
 * counted by resident pages as CENSUS_ANON regions.
 */
#ifndef MEMPROF_CENSUS_ANON_H
#define MEMPROF_CENSUS_ANON_H

#include <stdbool.h>
#include "census.h"
#include "vmem.h"

/*
 * Private, writable and backed by no file: [heap], unnamed or [anon:...]
 * mappings; never [stack], [vvar], [vdso] or a shared mapping.
 */
bool anon__private_rw(const struct vma *v);

/* Run after the allocators' walkers. 0, or -errno when the process is gone. */
int anon__census(struct vmem *m, struct census *c);

#endif
