// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TEMPORARY: the walkers' half of census.h (add_block, add_region, claim,
 * warn, free), just enough to build and test glibc.c on branch
 * census-glibc. census-py owns census.c; take its version when merging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "census.h"

/* Make room for one more element of size sz in *v (capacity *cap). */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t nc;
	void *nv;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 1024;
	nv = realloc(*v, nc * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

int census__add_block(struct census *c, uint64_t addr, uint64_t size,
		      enum census_kind kind)
{
	if (grow((void **)&c->blocks, &c->blocks_cap, c->nblocks,
		 sizeof(*c->blocks)))
		return -ENOMEM;
	c->blocks[c->nblocks++] = (struct census_block){
		addr, size | (uint64_t)kind << CENSUS_KIND_SHIFT
	};
	c->bytes[kind] += size;
	c->count[kind]++;
	return 0;
}

int census__add_region(struct census *c, uint64_t lo, uint64_t hi,
		       enum census_kind kind)
{
	if (grow((void **)&c->regions, &c->regions_cap, c->nregions,
		 sizeof(*c->regions)))
		return -ENOMEM;
	c->regions[c->nregions++] = (struct census_region){ lo, hi, kind };
	c->bytes[kind] += hi - lo;
	c->count[kind]++;
	return 0;
}

int census__claim(struct census *c, uint64_t lo, uint64_t hi)
{
	if (grow((void **)&c->claimed, &c->claimed_cap, c->nclaimed,
		 sizeof(*c->claimed)))
		return -ENOMEM;
	c->claimed[c->nclaimed++] = (struct census_range){ lo, hi };
	return 0;
}

void census__warn(struct census *c, const char *fmt, ...)
{
	va_list ap;

	if (c->warning[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->warning, sizeof(c->warning), fmt, ap);
	va_end(ap);
}

void census__free(struct census *c)
{
	free(c->blocks);
	free(c->regions);
	free(c->claimed);
	c->blocks = NULL;
	c->regions = NULL;
	c->claimed = NULL;
	c->nblocks = c->nregions = c->nclaimed = 0;
}
