// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "heap.h"

/* ---- site counters ---------------------------------------------------- */

/* Room for n sites' counters and as many dirty entries: both by id. */
static int reserve_sites(struct heap *h, size_t n)
{
	size_t cap = h->sites_cap ? h->sites_cap : 64;
	struct site *s;
	uint32_t *d;

	while (cap < n)
		cap *= 2;
	if (cap == h->sites_cap)
		return 0;
	s = realloc(h->sites, cap * sizeof(*s));
	if (s)
		h->sites = s;
	d = realloc(h->dirty, cap * sizeof(*d));
	if (d)
		h->dirty = d;
	if (!s || !d)
		return -ENOMEM;
	h->sites_cap = cap;
	return 0;
}

/* Sites are added in order (model/site.c): counters follow their ids. */
int heap__grow_sites(struct heap *h, size_t n)
{
	if (n <= h->nsites)
		return 0;
	if (reserve_sites(h, n))
		return -ENOMEM;
	memset(&h->sites[h->nsites], 0, (n - h->nsites) * sizeof(*h->sites));
	h->nsites = n;
	return 0;
}

/* ---- peak bookkeeping ------------------------------------------------- */

/* Copy live -> peak for the sites that changed since the last copy. */
static void commit_peak(struct heap *h)
{
	size_t i;

	for (i = 0; i < h->ndirty; i++) {
		struct site *s = &h->sites[h->dirty[i]];

		s->peak_bytes = s->live_bytes;
		s->peak_count = s->live_count;
		s->dirty = false;
	}
	h->ndirty = 0;
	h->peak_pending = false;
}

void heap__settle_peak(struct heap *h)
{
	if (h->peak_pending)
		commit_peak(h);
}

static void touch(struct heap *h, uint32_t site)
{
	if (!h->sites[site].dirty) {
		h->sites[site].dirty = true;
		h->dirty[h->ndirty++] = site;
	}
}

static void grow_by(struct heap *h, uint32_t site, uint64_t bytes, int blocks,
		    uint64_t now)
{
	/* A 0-byte block leaves the peak where it was: freeze it first. */
	if (!bytes)
		heap__settle_peak(h);
	touch(h, site);
	h->sites[site].live_bytes += bytes;
	h->sites[site].live_count += blocks;
	h->live_bytes += bytes;
	h->live_count += blocks;
	if (h->live_bytes > h->peak_bytes) {
		h->peak_bytes = h->live_bytes;
		h->peak_count = h->live_count;
		h->peak_at_ns = now;
		h->peak_pending = true;
	}
}

/* Memory is about to fall: freeze the peak breakdown first if it is new. */
static void shrink_by(struct heap *h, uint32_t site, uint64_t bytes, int blocks)
{
	heap__settle_peak(h);
	touch(h, site);
	h->sites[site].live_bytes -= bytes;
	h->sites[site].live_count -= blocks;
	h->live_bytes -= bytes;
	h->live_count -= blocks;
}

/* ---- events ----------------------------------------------------------- */

int heap__alloc(struct heap *h, uint64_t addr, uint64_t size, uint32_t site,
		uint64_t now)
{
	struct u64map_entry old;
	bool replaced;

	if (u64map__put(&h->blocks, addr, size, site, &old, &replaced))
		return -ENOMEM;
	if (replaced) /* its free was lost: the old block is gone */
		shrink_by(h, old.tag, old.val, 1);
	h->allocs++;
	h->sites[site].allocs++;
	grow_by(h, site, size, 1, now);
	return 0;
}

uint64_t heap__release(struct heap *h, uint64_t addr)
{
	struct u64map_entry b;

	if (!u64map__take(&h->blocks, addr, &b)) {
		h->unknown_frees++; /* allocated before we attached */
		return 0;
	}
	h->frees++;
	shrink_by(h, b.tag, b.val, 1);
	return b.val;
}

/*
 * realloc = free + alloc. In place (same address) only the size changes.
 * A move holds both blocks for an instant (malloc, copy, free), so the new
 * block is counted before the old one goes: that transient is real memory.
 * A move by mremap holds one copy only: the old block goes first.
 */
int heap__realloc(struct heap *h, uint64_t old, uint64_t addr, uint64_t size,
		  uint32_t site, bool remapped, uint64_t now)
{
	struct u64map_entry b;

	if (!old)
		return addr ? heap__alloc(h, addr, size, site, now) : 0;
	if (!addr) { /* realloc(p, 0) freed p */
		heap__release(h, old);
		return 0;
	}
	if (addr == old || remapped) {
		if (u64map__take(&h->blocks, old, &b))
			shrink_by(h, b.tag, b.val, 1);
		return heap__alloc(h, addr, size, site, now);
	}
	if (heap__alloc(h, addr, size, site, now))
		return -ENOMEM;
	heap__release(h, old);
	return 0;
}

static void cut_piece(void *ctx, uint32_t site, uint64_t bytes, int whole)
{
	shrink_by(ctx, site, bytes, whole); /* a split adds a mapping */
}

int heap__mmap(struct heap *h, uint64_t addr, uint64_t len, uint32_t site,
	       uint64_t now)
{
	/* MAP_FIXED over our own mapping replaces it. */
	if (regions__cut(&h->maps, addr, addr + len, cut_piece, h) ||
	    regions__add(&h->maps, addr, addr + len, site))
		return -ENOMEM;
	h->allocs++;
	h->sites[site].allocs++;
	grow_by(h, site, len, 1, now);
	return 0;
}

int heap__munmap(struct heap *h, uint64_t addr, uint64_t len)
{
	return regions__cut(&h->maps, addr, addr + len, cut_piece, h);
}

/* A tracked mapping keeps its site when resized or moved. */
int heap__mremap(struct heap *h, uint64_t old, uint64_t old_len, uint64_t addr,
		 uint64_t len, uint64_t now)
{
	int64_t site = regions__site_at(&h->maps, old);

	/* MREMAP_FIXED unmaps whatever was at the destination first. */
	if (site < 0) /* not ours: mapped before attach or by malloc */
		return regions__cut(&h->maps, addr, addr + len, cut_piece, h);
	if (regions__cut(&h->maps, old, old + old_len, cut_piece, h) ||
	    regions__cut(&h->maps, addr, addr + len, cut_piece, h) ||
	    regions__add(&h->maps, addr, addr + len, site))
		return -ENOMEM;
	grow_by(h, site, len, 1, now);
	return 0;
}

/* ---- lifetime --------------------------------------------------------- */

int heap__init(struct heap *h)
{
	memset(h, 0, sizeof(*h));
	if (u64map__init(&h->blocks)) {
		heap__free(h);
		return -ENOMEM;
	}
	return 0;
}

void heap__free(struct heap *h)
{
	u64map__free(&h->blocks);
	regions__free(&h->maps);
	free(h->sites);
	free(h->dirty);
	memset(h, 0, sizeof(*h));
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p = malloc(n ? n * size : 1);

	if (p && n)
		memcpy(p, src, n * size);
	return p;
}

int heap__clone(struct heap *dst, const struct heap *src)
{
	*dst = *src;
	dst->blocks.slots = NULL;
	dst->maps.v = NULL;
	dst->sites = dup_array(src->sites, src->sites_cap, sizeof(*src->sites));
	dst->dirty = dup_array(src->dirty, src->sites_cap, sizeof(*src->dirty));
	if (!dst->sites || !dst->dirty ||
	    u64map__copy(&dst->blocks, &src->blocks) ||
	    regions__copy(&dst->maps, &src->maps)) {
		heap__free(dst);
		return -ENOMEM;
	}
	dst->maps.cap = dst->maps.len;
	/* The child's own high-water mark starts at what it inherited. */
	for (size_t i = 0; i < dst->nsites; i++) {
		dst->sites[i].dirty = true;
		dst->dirty[i] = i;
	}
	dst->ndirty = dst->nsites;
	dst->peak_bytes = dst->live_bytes;
	dst->peak_count = dst->live_count;
	dst->peak_pending = true;
	return 0;
}

int heap__reset(struct heap *h)
{
	heap__free(h);
	return heap__init(h);
}
