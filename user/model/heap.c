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

uint64_t heap__take_window_max(struct heap *h)
{
	uint64_t max = h->window_max > h->live_bytes ? h->window_max
						     : h->live_bytes;

	h->window_max = h->live_bytes;
	return max;
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
	if (h->live_bytes > h->window_max)
		h->window_max = h->live_bytes;
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

/*
 * A census block freed: its "(before attach)" site shrinks. The bytes it
 * held (never 0: a usable size is at least 24), or 0 when not one.
 */
static uint64_t forget_before(struct heap *h, uint64_t addr)
{
	enum census_kind kind;
	uint64_t size;

	if (!before__take(&h->before, addr, &size, &kind))
		return 0;
	shrink_by(h, h->before.site[kind], size, 1);
	return size;
}

/* A block the table does not have: the census's, or noted in its window. */
static uint64_t release_unknown(struct heap *h, uint64_t addr)
{
	uint64_t bytes = forget_before(h, addr);

	if (bytes) {
		h->frees++;
		return bytes;
	}
	before__note_free(&h->before, addr);
	h->unknown_frees++; /* allocated before we attached */
	return 0;
}

int heap__alloc(struct heap *h, uint64_t addr, uint64_t size, uint32_t site,
		uint64_t now)
{
	struct u64map_entry old;
	bool replaced;

	if (u64map__put(&h->blocks, addr, size, site, &old, &replaced))
		return -ENOMEM;
	if (replaced) /* its free was lost: the old block is gone */
		shrink_by(h, old.tag, old.val, 1);
	else if (h->before.live) /* likewise a census block's */
		forget_before(h, addr);
	h->allocs++;
	h->sites[site].allocs++;
	grow_by(h, site, size, 1, now);
	return 0;
}

uint64_t heap__release(struct heap *h, uint64_t addr)
{
	struct u64map_entry b;

	if (!u64map__take(&h->blocks, addr, &b))
		return release_unknown(h, addr);
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
		else if (!forget_before(h, old))
			before__note_free(&h->before, old);
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
	before__note_unmap(&h->before, addr, addr + len);
	return regions__cut(&h->maps, addr, addr + len, cut_piece, h);
}

/* A tracked mapping keeps its site when resized or moved. */
int heap__mremap(struct heap *h, uint64_t old, uint64_t old_len, uint64_t addr,
		 uint64_t len, uint64_t now)
{
	int64_t site = regions__site_at(&h->maps, old);

	before__note_unmap(&h->before, old, old + old_len);
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

/* ---- the census ------------------------------------------------------ */

/* Addresses sorted, for the merge with the census's blocks. */
struct keys {
	uint64_t *v;
	size_t n, cap;
};

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A table's keys in [lo, hi]: the few of them a census block can be. */
static int add_keys(struct keys *k, const struct u64map *t, uint64_t lo,
		    uint64_t hi)
{
	const struct u64map_entry *e;
	uint64_t *v;

	u64map__for_each(t, e)
	{
		if (e->key < lo || e->key > hi)
			continue;
		if (k->n == k->cap) {
			k->cap = k->cap ? k->cap * 2 : 256;
			v = realloc(k->v, k->cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			k->v = v;
		}
		k->v[k->n++] = e->key;
	}
	return 0;
}

/*
 * What the window proves gone among the census's addresses: blocks in the
 * table (allocated since) and frees it noted, sorted. A merge with the
 * sorted census then costs one comparison a block, not two probes.
 */
static int gone_keys(const struct heap *h, const struct census *c,
		     struct keys *k)
{
	uint64_t lo = c->blocks[0].addr, hi = c->blocks[c->nblocks - 1].addr;
	int err = add_keys(k, &h->blocks, lo, hi);

	if (!err && h->before.window)
		err = add_keys(k, &h->before.freed, lo, hi);
	if (!err)
		qsort(k->v, k->n, sizeof(*k->v), key_cmp);
	return err;
}

/*
 * Keep the census blocks the window does not prove gone (in place, in
 * order); sum by kind. 0 or -ENOMEM.
 */
static int keep_blocks(struct heap *h, struct census *c, uint64_t *bytes,
		       uint64_t *count)
{
	struct keys gone = { 0 };
	size_t i, j = 0, k = 0;
	int err;

	if (!c->nblocks)
		return 0;
	err = gone_keys(h, c, &gone);
	for (i = 0; !err && i < c->nblocks; i++) {
		const struct census_block *b = &c->blocks[i];

		while (j < gone.n && gone.v[j] < b->addr)
			j++;
		if (j < gone.n && gone.v[j] == b->addr) {
			h->before.dropped++;
			continue;
		}
		bytes[census_block__kind(b)] += census_block__size(b);
		count[census_block__kind(b)]++;
		if (k != i)
			c->blocks[k] = *b;
		k++;
	}
	free(gone.v);
	if (!err)
		c->nblocks = k;
	return err;
}

/* The pieces of census regions nothing else accounts for. */
struct pieces {
	struct heap *h;
	struct region *v;
	size_t n, cap;
	enum census_kind kind;
	int err;
};

static void add_piece(void *ctx, uint64_t lo, uint64_t hi)
{
	struct pieces *p = ctx;
	struct region *v;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		v = realloc(p->v, p->cap * sizeof(*v));
		if (!v) {
			p->err = -ENOMEM;
			return;
		}
		p->v = v;
	}
	p->v[p->n++] = (struct region){ lo, hi, p->kind };
}

/* Less what the process has unmapped since the census began. */
static void not_unmapped(void *ctx, uint64_t lo, uint64_t hi)
{
	struct pieces *p = ctx;

	regions__uncovered(&p->h->before.unmapped, lo, hi, add_piece, p);
}

/*
 * Census regions less what is tracked already (mapped in the window),
 * found first and added after, so that the search sees only the tracked.
 */
static int keep_regions(struct heap *h, const struct census *c, uint64_t *bytes,
			uint64_t *count)
{
	struct pieces p = { .h = h };
	size_t i;

	for (i = 0; i < c->nregions && !p.err; i++) {
		p.kind = c->regions[i].kind;
		regions__uncovered(&h->maps, c->regions[i].lo, c->regions[i].hi,
				   not_unmapped, &p);
	}
	for (i = 0; i < p.n && !p.err; i++) {
		enum census_kind kind = p.v[i].site;

		p.v[i].site = h->before.site[kind];
		bytes[kind] += p.v[i].end - p.v[i].start;
		count[kind]++;
	}
	if (!p.err)
		p.err = regions__merge(&h->maps, p.v, p.n);
	free(p.v);
	return p.err;
}

/*
 * A peak reached while the census was read (the heap was empty at
 * attach: any peak so far is the window's) held the census's kept blocks
 * too: they were there before attach and are there still. Blocks freed
 * in the window may have been there as well, unknowable: the peak is low
 * by at most those.
 */
static void raise_window_peak(struct heap *h, const uint64_t *bytes,
			      const uint64_t *count)
{
	int k;

	if (!h->peak_bytes)
		return;
	heap__settle_peak(h);
	for (k = 0; k < CENSUS_KINDS; k++) {
		struct site *s = &h->sites[h->before.site[k]];

		s->peak_bytes += bytes[k];
		s->peak_count += count[k];
		h->peak_bytes += bytes[k];
		h->peak_count += count[k];
	}
}

int heap__adopt_census(struct heap *h, struct census *c, uint64_t now)
{
	uint64_t bytes[CENSUS_KINDS] = { 0 }, count[CENSUS_KINDS] = { 0 };
	size_t i;
	int err = keep_blocks(h, c, bytes, count);

	if (err)
		return err;
	before__adopt(&h->before, c->blocks, c->nblocks, c->blocks_cap);
	c->blocks = NULL;
	c->nblocks = c->blocks_cap = 0;
	err = keep_regions(h, c, bytes, count);
	before__close_window(&h->before);
	raise_window_peak(h, bytes, count);
	for (i = 0; i < CENSUS_KINDS; i++)
		if (count[i])
			grow_by(h, h->before.site[i], bytes[i], (int)count[i],
				now);
	return err;
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
	before__free(&h->before);
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
	memset(&dst->before, 0, sizeof(dst->before));
	dst->sites = dup_array(src->sites, src->sites_cap, sizeof(*src->sites));
	dst->dirty = dup_array(src->dirty, src->sites_cap, sizeof(*src->dirty));
	if (!dst->sites || !dst->dirty ||
	    u64map__copy(&dst->blocks, &src->blocks) ||
	    regions__copy(&dst->maps, &src->maps) ||
	    before__clone(&dst->before, &src->before)) {
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
