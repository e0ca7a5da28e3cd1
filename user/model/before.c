// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "before.h"

#define TOMBSTONE (~0ULL)

/* ---- the window ------------------------------------------------------- */

int before__open_window(struct before *b)
{
	if (b->window)
		return 0;
	if (u64map__init(&b->freed))
		return -ENOMEM;
	memset(&b->unmapped, 0, sizeof(b->unmapped));
	b->window = true;
	return 0;
}

void before__close_window(struct before *b)
{
	if (!b->window)
		return;
	u64map__free(&b->freed);
	regions__free(&b->unmapped);
	b->window = false;
}

/* A lost note only risks counting a freed block: never worth failing. */
void before__note_free(struct before *b, uint64_t addr)
{
	struct u64map_entry old;
	bool replaced;

	if (b->window && addr)
		u64map__put(&b->freed, addr, 1, 0, &old, &replaced);
}

static void drop_piece(void *ctx, uint32_t site, uint64_t bytes, int whole)
{
	(void)ctx, (void)site, (void)bytes, (void)whole;
}

/* Kept disjoint: a range unmapped twice is noted once. */
void before__note_unmap(struct before *b, uint64_t lo, uint64_t hi)
{
	if (!b->window || hi <= lo)
		return;
	if (!regions__cut(&b->unmapped, lo, hi, drop_piece, NULL))
		regions__add(&b->unmapped, lo, hi, 0);
}

/* ---- the blocks ------------------------------------------------------- */

void before__adopt(struct before *b, struct census_block *v, size_t n,
		   size_t cap)
{
	census__free_blocks(b->v, b->cap);
	b->v = v;
	b->n = b->live = n;
	b->cap = cap;
}

/* Index of the last entry starting at or below addr, or n. */
static size_t floor_of(const struct before *b, uint64_t addr)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : b->n;
}

const struct census_block *before__containing(const struct before *b,
					      uint64_t addr)
{
	size_t i = b->live ? floor_of(b, addr) : b->n;

	if (i == b->n || b->v[i].word == TOMBSTONE ||
	    addr - b->v[i].addr >= census_block__size(&b->v[i]))
		return NULL;
	return &b->v[i];
}

bool before__take(struct before *b, uint64_t addr, uint64_t *size,
		  enum census_kind *kind)
{
	size_t i;

	if (!b->live)
		return false;
	i = floor_of(b, addr);
	if (i == b->n || b->v[i].addr != addr || b->v[i].word == TOMBSTONE)
		return false;
	*size = census_block__size(&b->v[i]);
	*kind = census_block__kind(&b->v[i]);
	b->v[i].word = TOMBSTONE;
	b->live--;
	return true;
}

/* ---- lifetime --------------------------------------------------------- */

void before__free(struct before *b)
{
	before__close_window(b);
	census__free_blocks(b->v, b->cap);
	memset(b, 0, sizeof(*b));
}

/* fork: the child holds the same old blocks; no census is read for it. */
int before__clone(struct before *dst, const struct before *src)
{
	*dst = *src;
	dst->window = false;
	memset(&dst->freed, 0, sizeof(dst->freed));
	memset(&dst->unmapped, 0, sizeof(dst->unmapped));
	dst->v = NULL;
	if (!src->n)
		return 0;
	dst->v = census__alloc_blocks(src->n);
	dst->cap = src->n;
	if (!dst->v) {
		dst->n = dst->live = dst->cap = 0;
		return -ENOMEM;
	}
	memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	return 0;
}
