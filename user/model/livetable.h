/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Live allocation table: block address -> (size, site index). Open
 * addressing with linear probing and backward-shift deletion (no
 * tombstones), 24 bytes a slot, so a free costs one probe sequence and the
 * table stays dense under the malloc/free churn of a notebook.
 */
#ifndef MEMPROF_LIVETABLE_H
#define MEMPROF_LIVETABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct live_block {
	uint64_t addr; /* 0 marks an empty slot */
	uint64_t size;
	uint32_t site;
	uint32_t unused;
};

struct livetable {
	struct live_block *slots;
	size_t cap; /* power of two */
	size_t len;
};

int livetable__init(struct livetable *t);
void livetable__free(struct livetable *t);
/* Insert or replace; returns the replaced block's size through *old. */
int livetable__put(struct livetable *t, uint64_t addr, uint64_t size,
		   uint32_t site, struct live_block *old, bool *replaced);
/* Remove addr; false when it was unknown (allocated before attach). */
bool livetable__take(struct livetable *t, uint64_t addr,
		     struct live_block *out);
const struct live_block *livetable__get(const struct livetable *t,
					uint64_t addr);
int livetable__copy(struct livetable *dst, const struct livetable *src);
size_t livetable__bytes(const struct livetable *t);

#define livetable__for_each(t, b)                                  \
	for ((b) = (t)->slots; (b) < (t)->slots + (t)->cap; (b)++) \
		if ((b)->addr)

#endif
