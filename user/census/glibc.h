/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * glibc's heap read from outside: main_arena found by a signature scan of
 * libc's data (no symbols needed), every arena's heaps walked chunk by
 * chunk, mmapped chunks (memalign'd ones too) found in anonymous
 * mappings, and the chunks glibc keeps free in tcache and fastbins left
 * out. Layouts: glibc 2.34-2.41 and 2.43 (docs/design/census.md).
 */
#ifndef MEMPROF_CENSUS_GLIBC_H
#define MEMPROF_CENSUS_GLIBC_H

#include "census.h"
#include "vmem.h"

/*
 * Add pid's live glibc chunks to c as CENSUS_HEAP and CENSUS_MMAPPED
 * blocks, and claim the arenas' heaps and the chunks' mappings. 0; a
 * heap it cannot trust is warned about and left out. -errno only when
 * the process is gone.
 */
int glibc__census(struct vmem *m, struct census *c);

#endif
