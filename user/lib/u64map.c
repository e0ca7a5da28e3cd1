// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "u64map.h"

#define MIN_CAP 1024
#define MIN_SHIFT (64 - 10) /* log2(MIN_CAP) == 10 */

/*
 * Fibonacci hashing: the product's top bits depend on every key bit, so
 * clustered, 16-byte aligned addresses and sequential ids spread alike.
 */
static inline size_t slot_of(const struct u64map *t, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> t->shift);
}

int u64map__init(struct u64map *t)
{
	t->cap = MIN_CAP;
	t->shift = MIN_SHIFT;
	t->len = 0;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	return t->slots ? 0 : -ENOMEM;
}

void u64map__free(struct u64map *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* Place an entry known to be absent; the table has room. */
static void place(struct u64map_entry *slots, size_t cap, size_t start,
		  const struct u64map_entry *b)
{
	size_t i = start;

	while (slots[i].key)
		i = (i + 1) & (cap - 1);
	slots[i] = *b;
}

/* Double the capacity when 3/4 full, keeping probe sequences short. */
static int grow(struct u64map *t)
{
	struct u64map n = { .cap = t->cap * 2,
			    .len = t->len,
			    .shift = t->shift - 1 };
	size_t i;

	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slots[i].key)
			place(n.slots, n.cap, slot_of(&n, t->slots[i].key),
			      &t->slots[i]);
	free(t->slots);
	*t = n;
	return 0;
}

int u64map__put(struct u64map *t, uint64_t key, uint64_t val, uint32_t tag,
		struct u64map_entry *old, bool *replaced)
{
	struct u64map_entry b = { .key = key, .val = val, .tag = tag };
	size_t i;

	*replaced = false;
	if (!key)
		return -EINVAL;
	if ((t->len + 1) * 4 > t->cap * 3 && grow(t))
		return -ENOMEM;
	for (i = slot_of(t, key); t->slots[i].key; i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].key == key) {
			/* For blocks: a missed free, the old one is gone. */
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

static size_t find(const struct u64map *t, uint64_t key)
{
	size_t i;

	if (!t->cap) /* never initialised: empty */
		return (size_t)-1;
	for (i = slot_of(t, key); t->slots[i].key; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].key == key)
			return i;
	return (size_t)-1;
}

const struct u64map_entry *u64map__get(const struct u64map *t, uint64_t key)
{
	size_t i = find(t, key);

	return i == (size_t)-1 ? NULL : &t->slots[i];
}

/*
 * Backward-shift deletion: move later members of the probe run into the
 * hole when their home slot allows it, so lookups never need tombstones.
 */
bool u64map__take(struct u64map *t, uint64_t key, struct u64map_entry *out)
{
	size_t hole = find(t, key), i, home, mask = t->cap - 1;

	if (hole == (size_t)-1)
		return false;
	*out = t->slots[hole];
	for (i = (hole + 1) & mask; t->slots[i].key; i = (i + 1) & mask) {
		home = slot_of(t, t->slots[i].key);
		/* Can slot i move to the hole? Only if home is not in (hole, i]. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole].key = 0;
	t->len--;
	return true;
}

int u64map__copy(struct u64map *dst, const struct u64map *src)
{
	if (!src->cap) { /* never initialised: an empty copy, like it */
		memset(dst, 0, sizeof(*dst));
		return 0;
	}
	dst->slots = malloc(src->cap * sizeof(*src->slots));
	if (!dst->slots)
		return -ENOMEM;
	memcpy(dst->slots, src->slots, src->cap * sizeof(*src->slots));
	dst->cap = src->cap;
	dst->len = src->len;
	dst->shift = src->shift;
	return 0;
}

/* Memory the table itself holds, for the bytes-per-allocation figure. */
size_t u64map__bytes(const struct u64map *t)
{
	return t->cap * sizeof(*t->slots);
}
