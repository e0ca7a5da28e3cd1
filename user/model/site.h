/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The allocation sites of one process, and the one home of what a site
 * is: a native caller (the allocator call's return address), the Python
 * stack above it (0: none) and the module being imported when it
 * allocated. The registry gives each new (ip, stack, import) the next
 * dense id; the id's description keeps those parts, the native caller
 * resolved while the process lives, and the notebook cell run its bytes
 * belong to. The heap counts bytes per id (model/heap.h); the outputs ask
 * sites__frames() for typed frames and make JSON or text at their edge.
 *
 * Per event the cost is one hash probe: a key mixes the parts once
 * (nothing is allocated or resolved unless the site is new).
 */
#ifndef MEMPROF_SITE_H
#define MEMPROF_SITE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/frame.h"
#include "lib/u64map.h"
#include "memprof.h"
#include "procs/symbolize.h"

struct pystacks;

/* An import marker, a Python marker, the Python frames, the native caller. */
#define SITE_MAX_FRAMES (PY_MAX_DEPTH + 3)

struct site_desc {
	uint64_t ip; /* native caller: the allocator call's return address */
	uint64_t stack; /* Python stack id, 0: none */
	char *import; /* "numpy" when made by `import numpy`, or NULL */
	int32_t run; /* notebook cell run (model/cells.h), CELL_OUTSIDE */
	int8_t before; /* census kind + 1: a "(before attach)" site; 0 not */
	struct frame native; /* ip resolved; only addr until sites__resolve */
};

struct sites {
	struct site_desc *v; /* by site id, in order of first sight */
	size_t n, cap;
	size_t nresolved; /* v[0..nresolved) went through the symbolizer */
	struct u64map registry; /* key of (ip, stack, import) -> id (val) */
};

int sites__init(struct sites *s);
void sites__free(struct sites *s);
/* Deep copy for a forked child; its native callers are resolved anew. */
int sites__clone(struct sites *dst, const struct sites *src);
/* Forget every site (exec replaced the address space). */
int sites__reset(struct sites *s);

/*
 * The id of (ip, Python stack, import), added and described on first
 * sight (cell run CELL_OUTSIDE until decided); -1 on ENOMEM.
 */
int64_t sites__lookup_or_add(struct sites *s, uint64_t ip, uint64_t stack,
			     const char *import);
/*
 * The "(before attach)" site of a census kind (census/census.h): no
 * caller, no stack, one label; outside the registry (no event names it).
 */
int64_t sites__add_before(struct sites *s, int kind);
/* Resolve the native callers of sites added since the last call. */
void sites__resolve(struct sites *s, struct symbolizer *sym);
/*
 * A site's frames, root first, into out[0..max): "[import X]" when made
 * by an import, its Python stack (markers for lost or cut stacks), then
 * the native caller. Returns how many were written.
 */
size_t sites__frames(const struct sites *s, const struct pystacks *py,
		     uint32_t site, struct site_frame *out, size_t max);
/* The native caller of a site as a typed frame (resolved or not). */
struct site_frame sites__native_frame(const struct sites *s, uint32_t site);
/* Bytes the sites hold (registry, descriptions, names). */
size_t sites__bytes(const struct sites *s);

#endif
