// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "livetable.h"

#define MIN_CAP 1024

/* Fibonacci hashing: malloc addresses are 16-byte aligned and clustered. */
static inline size_t slot_of(const struct livetable *t, uint64_t addr)
{
	return (size_t)(((addr >> 4) * 0x9E3779B97F4A7C15ULL) >> 20) &
	       (t->cap - 1);
}

int livetable__init(struct livetable *t)
{
	t->cap = MIN_CAP;
	t->len = 0;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	return t->slots ? 0 : -ENOMEM;
}

void livetable__free(struct livetable *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* Place a block known to be absent; the table has room. */
static void place(struct live_block *slots, size_t cap, size_t start,
		  const struct live_block *b)
{
	size_t i = start;

	while (slots[i].addr)
		i = (i + 1) & (cap - 1);
	slots[i] = *b;
}

/* Double the capacity when 3/4 full, keeping probe sequences short. */
static int grow(struct livetable *t)
{
	struct livetable n = { .cap = t->cap * 2, .len = t->len };
	size_t i;

	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slots[i].addr)
			place(n.slots, n.cap, slot_of(&n, t->slots[i].addr),
			      &t->slots[i]);
	free(t->slots);
	*t = n;
	return 0;
}

int livetable__put(struct livetable *t, uint64_t addr, uint64_t size,
		   uint32_t site, struct live_block *old, bool *replaced)
{
	struct live_block b = { .addr = addr, .size = size, .site = site };
	size_t i;

	*replaced = false;
	if ((t->len + 1) * 4 > t->cap * 3 && grow(t))
		return -ENOMEM;
	for (i = slot_of(t, addr); t->slots[i].addr;
	     i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].addr == addr) {
			/* A missed free: the old block is gone for sure. */
			*old = t->slots[i];
			*replaced = true;
			t->slots[i] = b;
			return 0;
		}
	}
	t->slots[i] = b;
	t->len++;
	return 0;
}

static size_t find(const struct livetable *t, uint64_t addr)
{
	size_t i;

	for (i = slot_of(t, addr); t->slots[i].addr; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].addr == addr)
			return i;
	return (size_t)-1;
}

const struct live_block *livetable__get(const struct livetable *t,
					uint64_t addr)
{
	size_t i = find(t, addr);

	return i == (size_t)-1 ? NULL : &t->slots[i];
}

/*
 * Backward-shift deletion: move later members of the probe run into the
 * hole when their home slot allows it, so lookups never need tombstones.
 */
bool livetable__take(struct livetable *t, uint64_t addr, struct live_block *out)
{
	size_t hole = find(t, addr), i, home, mask = t->cap - 1;

	if (hole == (size_t)-1)
		return false;
	*out = t->slots[hole];
	for (i = (hole + 1) & mask; t->slots[i].addr; i = (i + 1) & mask) {
		home = slot_of(t, t->slots[i].addr);
		/* Can slot i move to the hole? Only if home is not in (hole, i]. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole].addr = 0;
	t->len--;
	return true;
}

int livetable__copy(struct livetable *dst, const struct livetable *src)
{
	dst->slots = malloc(src->cap * sizeof(*src->slots));
	if (!dst->slots)
		return -ENOMEM;
	memcpy(dst->slots, src->slots, src->cap * sizeof(*src->slots));
	dst->cap = src->cap;
	dst->len = src->len;
	return 0;
}

/* Memory the table itself holds, for the bytes-per-allocation figure. */
size_t livetable__bytes(const struct livetable *t)
{
	return t->cap * sizeof(*t->slots);
}
