/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's one hash table: a non-zero u64 key -> (u64 val, u32 tag).
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), 24 bytes a slot, Fibonacci hashing (keys that are 16-byte
 * aligned addresses or small ids spread alike). The live blocks of a heap
 * (address -> size, site), the site registry (key -> site id) and the
 * Python tables (id -> index) all use it: a free costs one probe sequence
 * and the table stays dense under a notebook's malloc/free churn.
 */
#ifndef MEMPROF_U64MAP_H
#define MEMPROF_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map_entry {
	uint64_t key; /* 0 marks an empty slot */
	uint64_t val;
	uint32_t tag;
	uint32_t unused;
};

struct u64map {
	struct u64map_entry *slots;
	size_t cap; /* power of two */
	size_t len;
	unsigned shift; /* 64 - log2(cap): the hash's top bits pick a slot */
};

int u64map__init(struct u64map *t);
void u64map__free(struct u64map *t);
/*
 * Insert or replace key (non-zero); a replaced entry is copied to *old.
 * 0, -EINVAL for key 0, or -ENOMEM.
 */
int u64map__put(struct u64map *t, uint64_t key, uint64_t val, uint32_t tag,
		struct u64map_entry *old, bool *replaced);
/* Remove key into *out; false when it is not there. */
bool u64map__take(struct u64map *t, uint64_t key, struct u64map_entry *out);
const struct u64map_entry *u64map__get(const struct u64map *t, uint64_t key);
int u64map__copy(struct u64map *dst, const struct u64map *src);
/* Memory the table itself holds, for the bytes-per-allocation figure. */
size_t u64map__bytes(const struct u64map *t);

#define u64map__for_each(t, e)                                     \
	for ((e) = (t)->slots; (e) < (t)->slots + (t)->cap; (e)++) \
		if ((e)->key)

#endif
