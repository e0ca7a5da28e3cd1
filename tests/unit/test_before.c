// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdlib.h>
#include "model/before.h"
#include "unit.h"

/* n blocks at 0x1000, 0x1040, ... of size 16 * (i + 1), all heap. */
static struct census_block *blocks(size_t n)
{
	struct census_block *v = census__alloc_blocks(n);
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = (struct census_block){ 0x1000 + 0x40 * i, 16 * (i + 1) };
	return v;
}

Test(before, take_finds_each_block_once, .timeout = 10)
{
	struct before b = { 0 };
	enum census_kind kind;
	uint64_t size, i;

	before__adopt(&b, blocks(1000), 1000, 1000);
	cr_assert_eq(b.live, 1000);
	for (i = 0; i < 1000; i += 7) {
		cr_assert(before__take(&b, 0x1000 + 0x40 * i, &size, &kind));
		cr_assert_eq(size, 16 * (i + 1));
		cr_assert_eq(kind, CENSUS_HEAP);
		/* A second free of it is not the census's any more. */
		cr_assert_not(
			before__take(&b, 0x1000 + 0x40 * i, &size, &kind));
	}
	cr_assert_eq(b.live, 1000 - 143);
	/* Between blocks, below and above: nothing. */
	cr_assert_not(before__take(&b, 0x1010, &size, &kind));
	cr_assert_not(before__take(&b, 0x10, &size, &kind));
	cr_assert_not(before__take(&b, 0x1000 + 0x40 * 1000, &size, &kind));
	before__free(&b);
}

Test(before, kind_and_size_share_a_word, .timeout = 10)
{
	struct census_block *v = census__alloc_blocks(1);
	struct before b = { 0 };
	enum census_kind kind;
	uint64_t size;

	v[0] = (struct census_block){ 0x7f0000001010,
				      (40ULL << 20) | ((uint64_t)CENSUS_MMAPPED
						       << CENSUS_KIND_SHIFT) };
	before__adopt(&b, v, 1, 1);
	cr_assert(before__take(&b, 0x7f0000001010, &size, &kind));
	cr_assert_eq(size, 40ULL << 20);
	cr_assert_eq(kind, CENSUS_MMAPPED);
	before__free(&b);
}

Test(before, the_window_notes_frees_and_unmaps_only_while_open, .timeout = 10)
{
	struct before b = { 0 };

	before__note_free(&b, 0x5000);
	cr_assert_eq(b.freed.len, 0, "no window: nothing noted");
	cr_assert_eq(before__open_window(&b), 0);
	before__note_free(&b, 0x5000);
	before__note_unmap(&b, 0x100000, 0x200000);
	before__note_unmap(&b, 0x180000, 0x280000); /* overlaps: kept once */
	cr_assert_not_null(u64map__get(&b.freed, 0x5000));
	cr_assert_null(u64map__get(&b.freed, 0x5010));
	cr_assert_eq(regions__total(&b.unmapped), 0x180000);
	before__close_window(&b);
	cr_assert_not(b.window);
	cr_assert_eq(b.freed.len, 0, "what was noted is forgotten");
	cr_assert_eq(b.unmapped.len, 0);
	before__free(&b);
}

Test(before, a_clone_has_its_own_blocks, .timeout = 10)
{
	struct before b = { 0 }, c;
	enum census_kind kind;
	uint64_t size;

	before__adopt(&b, blocks(10), 10, 10);
	cr_assert_eq(before__open_window(&b), 0);
	cr_assert_eq(before__clone(&c, &b), 0);
	cr_assert_not(c.window, "a forked child has no census of its own");
	cr_assert(before__take(&c, 0x1040, &size, &kind));
	cr_assert_eq(c.live, 9);
	cr_assert_eq(b.live, 10, "the parent still holds its block");
	cr_assert(before__take(&b, 0x1040, &size, &kind));
	before__free(&c);
	before__free(&b);
}
