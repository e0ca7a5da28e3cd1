// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include "model/heap.h"
#include "unit.h"

#define KEY_A 0x401000
#define KEY_B 0x402000
#define KEY_C 0x403000

/*
 * The registry the heaps' site ids come from (model/site.h): one per test
 * process, as one per traced process.
 */
static struct sites sites;

/* The id of a native site, as events.c gets it: registry, then counters. */
static int64_t site_id(struct heap *h, uint64_t key)
{
	return unit_site(&sites, h, key, 0);
}

static void expect_site(const struct heap *h, int64_t s, int64_t live_bytes,
			int64_t live_count, int64_t peak_bytes,
			int64_t peak_count)
{
	cr_assert_geq(s, 0);
	cr_assert_lt((size_t)s, h->nsites);
	cr_assert_eq(h->sites[s].live_bytes, live_bytes,
		     "site %lld live_bytes %lld, want %lld", (long long)s,
		     (long long)h->sites[s].live_bytes, (long long)live_bytes);
	cr_assert_eq(h->sites[s].live_count, live_count,
		     "site %lld live_count %lld, want %lld", (long long)s,
		     (long long)h->sites[s].live_count, (long long)live_count);
	cr_assert_eq(h->sites[s].peak_bytes, peak_bytes,
		     "site %lld peak_bytes %lld, want %lld", (long long)s,
		     (long long)h->sites[s].peak_bytes, (long long)peak_bytes);
	cr_assert_eq(h->sites[s].peak_count, peak_count,
		     "site %lld peak_count %lld, want %lld", (long long)s,
		     (long long)h->sites[s].peak_count, (long long)peak_count);
}

Test(heap, site_index_is_stable, .timeout = 10)
{
	struct heap h;
	uint64_t k;

	cr_assert_eq(heap__init(&h), 0);
	cr_assert_eq(site_id(&h, KEY_A), 0);
	cr_assert_eq(site_id(&h, KEY_B), 1);
	cr_assert_eq(site_id(&h, KEY_A), 0);
	/* Many keys: the index and site array grow, indices never move. */
	for (k = 0; k < 10000; k++)
		cr_assert_eq(site_id(&h, 0x7000000 + k * 5), (int64_t)k + 2);
	for (k = 0; k < 10000; k++)
		cr_assert_eq(site_id(&h, 0x7000000 + k * 5), (int64_t)k + 2);
	cr_assert_eq(site_id(&h, KEY_B), 1);
	cr_assert_eq(h.nsites, 10002);
	cr_assert_eq(sites.v[2].ip, 0x7000000);
	cr_assert_eq(h.sites[2].live_bytes, 0);
	heap__free(&h);
}

Test(heap, alloc_release_accounting, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 10), 0);
	cr_assert_eq(heap__alloc(&h, 0x2000, 50, b, 20), 0);
	cr_assert_eq(heap__alloc(&h, 0x3000, 25, a, 30), 0);
	cr_assert_eq(h.live_bytes, 175);
	cr_assert_eq(h.live_count, 3);
	cr_assert_eq(h.allocs, 3);
	cr_assert_eq(h.sites[a].allocs, 2);
	cr_assert_eq(h.sites[b].allocs, 1);
	cr_assert_eq(h.peak_bytes, 175);
	cr_assert_eq(h.peak_count, 3);
	cr_assert_eq(h.peak_at_ns, 30);

	heap__release(&h, 0x1000);
	cr_assert_eq(h.live_bytes, 75);
	cr_assert_eq(h.live_count, 2);
	cr_assert_eq(h.frees, 1);
	cr_assert_eq(h.unknown_frees, 0);
	cr_assert_eq(h.peak_bytes, 175);
	heap__settle_peak(&h);
	expect_site(&h, a, 25, 1, 125, 2);
	expect_site(&h, b, 50, 1, 50, 1);

	/* A lower second hill leaves the peak alone. */
	cr_assert_eq(heap__alloc(&h, 0x4000, 60, b, 40), 0);
	heap__release(&h, 0x2000);
	heap__release(&h, 0x3000);
	heap__release(&h, 0x4000);
	heap__settle_peak(&h);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	cr_assert_eq(h.peak_bytes, 175);
	cr_assert_eq(h.peak_at_ns, 30);
	expect_site(&h, a, 0, 0, 125, 2);
	expect_site(&h, b, 0, 0, 50, 1);
	cr_assert_eq(h.blocks.len, 0);
	heap__free(&h);
}

Test(heap, unknown_frees_are_counted_and_ignored, .timeout = 10)
{
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	heap__release(&h, 0x9990);
	heap__release(&h, 0x1010); /* inside a block, not its start */
	cr_assert_eq(h.unknown_frees, 2);
	cr_assert_eq(h.frees, 0);
	cr_assert_eq(h.live_bytes, 100);
	cr_assert_eq(h.live_count, 1);
	heap__release(&h, 0x1000);
	heap__release(&h, 0x1000); /* double free: unknown by now */
	cr_assert_eq(h.frees, 1);
	cr_assert_eq(h.unknown_frees, 3);
	cr_assert_eq(h.live_bytes, 0);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 100, 1);
	heap__free(&h);
}

Test(heap, realloc_null_is_alloc, .timeout = 10)
{
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	cr_assert_eq(heap__realloc(&h, 0, 0x1000, 64, a, false, 5), 0);
	cr_assert_eq(h.live_bytes, 64);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.allocs, 1);
	cr_assert_eq(h.blocks.len, 1);
	cr_assert_eq(u64map__get(&h.blocks, 0x1000)->val, 64);
	/* A failed realloc(NULL, n) returned NULL: nothing happened. */
	cr_assert_eq(heap__realloc(&h, 0, 0, 64, a, false, 6), 0);
	cr_assert_eq(h.allocs, 1);
	cr_assert_eq(h.live_bytes, 64);
	heap__free(&h);
}

Test(heap, realloc_to_zero_frees, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	cr_assert_eq(heap__realloc(&h, 0x1000, 0, 0, b, false, 2), 0);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	cr_assert_eq(h.frees, 1);
	cr_assert_eq(h.allocs, 1);
	cr_assert_null(u64map__get(&h.blocks, 0x1000));
	/* realloc(unknown, 0) is an unknown free. */
	cr_assert_eq(heap__realloc(&h, 0x5000, 0, 0, b, false, 3), 0);
	cr_assert_eq(h.unknown_frees, 1);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 100, 1);
	expect_site(&h, b, 0, 0, 0, 0);
	heap__free(&h);
}

Test(heap, realloc_in_place_changes_size_and_site, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	/* Grows in place: never 100 + 300 at once. */
	cr_assert_eq(heap__realloc(&h, 0x1000, 0x1000, 300, b, false, 2), 0);
	cr_assert_eq(h.live_bytes, 300);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.peak_bytes, 300);
	cr_assert_eq(h.blocks.len, 1);
	cr_assert_eq(u64map__get(&h.blocks, 0x1000)->tag, b);
	/* Shrinks in place. */
	cr_assert_eq(heap__realloc(&h, 0x1000, 0x1000, 50, b, false, 3), 0);
	cr_assert_eq(h.live_bytes, 50);
	cr_assert_eq(h.peak_bytes, 300);
	cr_assert_eq(h.peak_at_ns, 2);
	cr_assert_eq(h.unknown_frees, 0);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 0, 0);
	expect_site(&h, b, 50, 1, 300, 1);
	heap__release(&h, 0x1000);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	heap__free(&h);
}

Test(heap, realloc_moved_counts_both_at_the_transient_peak, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	cr_assert_eq(heap__realloc(&h, 0x1000, 0x2000, 150, b, false, 2), 0);
	cr_assert_eq(h.live_bytes, 150);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.peak_bytes, 250, "old and new block both live");
	cr_assert_eq(h.peak_count, 2);
	cr_assert_eq(h.peak_at_ns, 2);
	cr_assert_eq(h.frees, 1);
	cr_assert_eq(h.allocs, 2);
	cr_assert_null(u64map__get(&h.blocks, 0x1000));
	cr_assert_eq(u64map__get(&h.blocks, 0x2000)->val, 150);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 100, 1);
	expect_site(&h, b, 150, 1, 150, 1);
	heap__free(&h);
}

Test(heap, realloc_moved_by_mremap_holds_one_copy, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x100000, 200000, a, 1), 0);
	cr_assert_eq(heap__realloc(&h, 0x100000, 0x900000, 300000, b, true, 2),
		     0);
	cr_assert_eq(h.live_bytes, 300000);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.peak_bytes, 300000, "no malloc-copy-free transient");
	cr_assert_eq(h.peak_count, 1);
	cr_assert_eq(h.allocs, 2);
	cr_assert_eq(h.unknown_frees, 0);
	cr_assert_null(u64map__get(&h.blocks, 0x100000));
	cr_assert_eq(u64map__get(&h.blocks, 0x900000)->val, 300000);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 0, 0);
	expect_site(&h, b, 300000, 1, 300000, 1);
	heap__release(&h, 0x900000);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	heap__free(&h);
}

Test(heap, realloc_of_unknown_block, .timeout = 10)
{
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	/* In place: the old size is unknown, the new block is tracked. */
	cr_assert_eq(heap__realloc(&h, 0x5000, 0x5000, 80, a, false, 1), 0);
	cr_assert_eq(h.live_bytes, 80);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.unknown_frees, 0);
	/* Moved: the new block is tracked, the old free is unknown. */
	cr_assert_eq(heap__realloc(&h, 0x6000, 0x7000, 90, a, false, 2), 0);
	cr_assert_eq(h.live_bytes, 170);
	cr_assert_eq(h.live_count, 2);
	cr_assert_eq(h.unknown_frees, 1);
	cr_assert_eq(h.frees, 0);
	cr_assert_eq(h.allocs, 2);
	heap__release(&h, 0x7000);
	heap__release(&h, 0x5000);
	cr_assert_eq(h.live_bytes, 0);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 170, 2);
	heap__free(&h);
}

Test(heap, lost_free_replaces_old_block, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	/* The same address again: its free was lost, the block is gone. */
	cr_assert_eq(heap__alloc(&h, 0x1000, 40, b, 2), 0);
	cr_assert_eq(h.live_bytes, 40);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.blocks.len, 1);
	cr_assert_eq(h.peak_bytes, 100);
	cr_assert_eq(h.frees, 0);
	cr_assert_eq(h.allocs, 2);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 100, 1);
	expect_site(&h, b, 40, 1, 0, 0);
	heap__release(&h, 0x1000);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.frees, 1);
	heap__free(&h);
}

/*
 * A zero-byte block (malloc(0)) made just after the peak does not change
 * the peak's bytes; it must not creep into the peak's per-site counts.
 */
Test(heap, zero_byte_alloc_after_peak_stays_out_of_it, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	cr_assert_eq(heap__alloc(&h, 0x2000, 0, b, 2), 0);
	cr_assert_eq(h.peak_count, 1);
	heap__release(&h, 0x1000);
	heap__settle_peak(&h);
	cr_assert_eq(h.peak_bytes, 100);
	expect_site(&h, a, 0, 0, 100, 1);
	expect_site(&h, b, 0, 1, 0, 0);
	heap__free(&h);
}

Test(heap, mmap_and_partial_munmap, .timeout = 10)
{
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x4000, a, 1), 0);
	cr_assert_eq(h.live_bytes, 0x4000);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.allocs, 1);
	cr_assert_eq(h.sites[a].allocs, 1);
	/* Head. */
	cr_assert_eq(heap__munmap(&h, 0x10000, 0x1000), 0);
	cr_assert_eq(h.live_bytes, 0x3000);
	cr_assert_eq(h.live_count, 1);
	/* A hole: two mappings remain, each counted. */
	cr_assert_eq(heap__munmap(&h, 0x12000, 0x1000), 0);
	cr_assert_eq(h.live_bytes, 0x2000);
	cr_assert_eq(h.live_count, 2);
	cr_assert_eq(h.maps.len, 2);
	/* Unmapping something we never saw changes nothing. */
	cr_assert_eq(heap__munmap(&h, 0x80000, 0x1000), 0);
	cr_assert_eq(h.live_bytes, 0x2000);
	cr_assert_eq(heap__munmap(&h, 0x11000, 0x1000), 0);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(heap__munmap(&h, 0x13000, 0x1000), 0);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0, "count %lld after unmapping it all",
		     (long long)h.live_count);
	cr_assert_eq(h.maps.len, 0);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 0x4000, 1);
	heap__free(&h);
}

Test(heap, mmap_fixed_over_own_mapping_replaces_it, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x2000, a, 1), 0);
	cr_assert_eq(heap__mmap(&h, 0x11000, 0x2000, b, 2), 0);
	cr_assert_eq(h.live_bytes, 0x3000);
	cr_assert_eq(h.live_count, 2);
	cr_assert_eq(regions__site_at(&h.maps, 0x11000), b);
	cr_assert_eq(regions__site_at(&h.maps, 0x10fff), a);
	heap__settle_peak(&h);
	expect_site(&h, a, 0x1000, 1, 0x1000, 1);
	expect_site(&h, b, 0x2000, 1, 0x2000, 1);
	heap__free(&h);
}

Test(heap, mremap_keeps_the_site, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x2000, a, 1), 0);
	/* Moved and grown: still site a, one mapping. */
	cr_assert_eq(heap__mremap(&h, 0x10000, 0x2000, 0x50000, 0x3000, 2), 0);
	cr_assert_eq(h.live_bytes, 0x3000);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(regions__site_at(&h.maps, 0x10000), -1);
	cr_assert_eq(regions__site_at(&h.maps, 0x52fff), a);
	cr_assert_eq(h.allocs, 1, "a remap is not a new allocation");
	/* Shrunk in place. */
	cr_assert_eq(heap__mremap(&h, 0x50000, 0x3000, 0x50000, 0x1000, 3), 0);
	cr_assert_eq(h.live_bytes, 0x1000);
	cr_assert_eq(h.live_count, 1);
	/* Not ours (mapped before attach): ignored. */
	cr_assert_eq(heap__mremap(&h, 0x90000, 0x1000, 0xa0000, 0x8000, 4), 0);
	cr_assert_eq(h.live_bytes, 0x1000);
	cr_assert_eq(h.maps.len, 1);
	cr_assert_eq(h.peak_bytes, 0x3000);
	heap__settle_peak(&h);
	expect_site(&h, a, 0x1000, 1, 0x3000, 1);
	expect_site(&h, b, 0, 0, 0, 0);
	cr_assert_eq(heap__munmap(&h, 0x50000, 0x1000), 0);
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	heap__free(&h);
}

/* MREMAP_FIXED onto one of our mappings unmaps it first. */
Test(heap, mremap_onto_own_mapping_replaces_it, .timeout = 10)
{
	struct heap h;
	int64_t a, b;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	b = site_id(&h, KEY_B);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x2000, a, 1), 0);
	cr_assert_eq(heap__mmap(&h, 0x40000, 0x2000, b, 2), 0);
	cr_assert_eq(heap__mremap(&h, 0x40000, 0x2000, 0x10000, 0x2000, 3), 0);
	cr_assert_eq(h.live_bytes, 0x2000);
	cr_assert_eq(h.live_count, 1);
	cr_assert_eq(h.maps.len, 1);
	cr_assert_eq(regions__total(&h.maps), 0x2000);
	cr_assert_eq(regions__site_at(&h.maps, 0x10000), b);
	/* An untracked mapping moved onto ours unmaps ours too. */
	cr_assert_eq(heap__mremap(&h, 0x90000, 0x1000, 0x11000, 0x1000, 4), 0);
	cr_assert_eq(h.live_bytes, 0x1000);
	cr_assert_eq(regions__site_at(&h.maps, 0x11000), -1);
	heap__settle_peak(&h);
	expect_site(&h, a, 0, 0, 0x2000, 1);
	expect_site(&h, b, 0x1000, 1, 0x2000, 1);
	heap__free(&h);
}

Test(heap, clone_copies_and_starts_peak_at_inherited, .timeout = 10)
{
	struct heap p, c;
	int64_t a, b, pc;

	cr_assert_eq(heap__init(&p), 0);
	a = site_id(&p, KEY_A);
	b = site_id(&p, KEY_B);
	cr_assert_eq(heap__alloc(&p, 0x1000, 1000, a, 1), 0);
	cr_assert_eq(heap__alloc(&p, 0x2000, 400, b, 2), 0);
	cr_assert_eq(heap__mmap(&p, 0x100000, 0x1000, b, 3), 0);
	heap__release(&p, 0x1000);
	cr_assert_eq(p.live_bytes, 400 + 0x1000);
	cr_assert_eq(p.peak_bytes, 1400 + 0x1000);

	cr_assert_eq(heap__clone(&c, &p), 0);
	cr_assert_eq(c.live_bytes, 400 + 0x1000);
	cr_assert_eq(c.live_count, 2);
	cr_assert_eq(c.peak_bytes, 400 + 0x1000, "child peak = inherited");
	cr_assert_eq(c.peak_count, 2);
	cr_assert_eq(c.nsites, 2);
	cr_assert_eq(site_id(&c, KEY_B), b, "site index copied");
	cr_assert_neq(c.blocks.slots, p.blocks.slots);
	cr_assert_neq(c.sites, p.sites);
	heap__settle_peak(&c);
	expect_site(&c, a, 0, 0, 0, 0);
	expect_site(&c, b, 400 + 0x1000, 2, 400 + 0x1000, 2);

	/* The child frees an inherited block: the parent still has it. */
	heap__release(&c, 0x2000);
	cr_assert_eq(c.frees, p.frees + 1);
	cr_assert_not_null(u64map__get(&p.blocks, 0x2000));
	cr_assert_eq(p.live_bytes, 400 + 0x1000);
	cr_assert_eq(heap__munmap(&c, 0x100000, 0x1000), 0);
	cr_assert_eq(regions__site_at(&p.maps, 0x100000), b);
	cr_assert_eq(c.live_bytes, 0);

	/* New child-only sites and blocks stay in the child. */
	pc = site_id(&c, KEY_C);
	cr_assert_eq(pc, 2);
	cr_assert_eq(heap__alloc(&c, 0x3000, 5000, pc, 4), 0);
	cr_assert_eq(c.peak_bytes, 5000);
	cr_assert_eq(p.nsites, 2);
	cr_assert_null(u64map__get(&p.blocks, 0x3000));
	heap__release(&c, 0x3000);
	heap__settle_peak(&c);
	expect_site(&c, b, 0, 0, 0, 0);
	expect_site(&c, pc, 0, 0, 5000, 1);

	/* The parent's own breakdown is untouched. */
	heap__settle_peak(&p);
	expect_site(&p, a, 0, 0, 1000, 1);
	expect_site(&p, b, 400 + 0x1000, 2, 400 + 0x1000, 2);
	heap__free(&p);
	cr_assert_eq(site_id(&c, KEY_A), a, "child outlives parent");
	heap__free(&c);
}

Test(heap, reset_forgets_everything, .timeout = 10)
{
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	a = site_id(&h, KEY_A);
	cr_assert_eq(heap__alloc(&h, 0x1000, 100, a, 1), 0);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x1000, a, 2), 0);
	heap__release(&h, 0x7777);
	cr_assert_eq(heap__reset(&h), 0);
	cr_assert_eq(sites__reset(&sites), 0); /* exec forgets both */
	cr_assert_eq(h.live_bytes, 0);
	cr_assert_eq(h.live_count, 0);
	cr_assert_eq(h.peak_bytes, 0);
	cr_assert_eq(h.peak_count, 0);
	cr_assert_eq(h.nsites, 0);
	cr_assert_eq(h.allocs, 0);
	cr_assert_eq(h.unknown_frees, 0);
	cr_assert_eq(h.blocks.len, 0);
	cr_assert_eq(h.maps.len, 0);
	cr_assert_null(u64map__get(&h.blocks, 0x1000));
	/* Usable again. */
	a = site_id(&h, KEY_B);
	cr_assert_eq(a, 0);
	heap__release(&h, 0x1000);
	cr_assert_eq(h.unknown_frees, 1);
	cr_assert_eq(heap__alloc(&h, 0x1000, 7, a, 3), 0);
	cr_assert_eq(h.live_bytes, 7);
	cr_assert_eq(h.peak_bytes, 7);
	heap__free(&h);
}

/* ---- randomized, against a brute-force model ------------------------- */

#define NKEYS 50
#define NEVENTS 5000
#define NSEQ 20
#define PAGE 4096ULL
#define HEAP_BASE 0x555500000000ULL
#define HEAP_SLOTS 65536 /* 16-byte-aligned addresses malloc may return */
#define UNKNOWN_BASE 0x400000000000ULL
#define MAP_BASE 0x7f0000000000ULL
#define MAP_PAGES 1024
#define UNTRACKED_MAP 0x7e0000000000ULL

struct mblock {
	uint64_t addr, size;
	uint32_t site;
};

struct mreg {
	uint64_t start, end;
	uint32_t site;
};

/*
 * The model: plain arrays, everything recomputed from scratch after each
 * step. Mappings are counted per region: a hole splits one into two.
 */
struct model {
	struct mblock *b;
	size_t nb, capb;
	struct mreg *r;
	size_t nr, capr;
	uint64_t allocs, frees, unknown_frees;
	uint64_t site_allocs[NKEYS];
	uint64_t max_total, max_count;
	int64_t max_bytes[NKEYS], max_cnt[NKEYS];
	uint64_t steps;
};

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rnd() % (hi - lo + 1);
}

static long find_block(const struct model *m, uint64_t addr)
{
	size_t i;

	for (i = 0; i < m->nb; i++)
		if (m->b[i].addr == addr)
			return (long)i;
	return -1;
}

static void add_block(struct model *m, uint64_t addr, uint64_t size,
		      uint32_t site)
{
	if (m->nb == m->capb) {
		m->capb = m->capb ? m->capb * 2 : 256;
		m->b = realloc(m->b, m->capb * sizeof(*m->b));
		cr_assert_not_null(m->b);
	}
	m->b[m->nb++] = (struct mblock){ addr, size, site };
}

static void drop_block(struct model *m, long i)
{
	m->b[i] = m->b[--m->nb];
}

static void add_reg(struct model *m, uint64_t start, uint64_t end,
		    uint32_t site)
{
	if (m->nr == m->capr) {
		m->capr = m->capr ? m->capr * 2 : 64;
		m->r = realloc(m->r, m->capr * sizeof(*m->r));
		cr_assert_not_null(m->r);
	}
	m->r[m->nr++] = (struct mreg){ start, end, site };
}

/* Remove [start, end) from every region, splitting where needed. */
static void cut_regs(struct model *m, uint64_t start, uint64_t end)
{
	size_t i = 0;

	while (i < m->nr) {
		struct mreg g = m->r[i];

		if (g.end <= start || g.start >= end) {
			i++;
			continue;
		}
		m->r[i] = m->r[--m->nr];
		if (g.start < start)
			add_reg(m, g.start, start, g.site);
		if (g.end > end)
			add_reg(m, end, g.end, g.site);
		/* The pieces appended at the end are outside [start, end). */
	}
}

static int64_t reg_site(const struct model *m, uint64_t addr)
{
	size_t i;

	for (i = 0; i < m->nr; i++)
		if (addr >= m->r[i].start && addr < m->r[i].end)
			return m->r[i].site;
	return -1;
}

static void tally(const struct model *m, int64_t *bytes, int64_t *count,
		  uint64_t *total, uint64_t *n)
{
	size_t i;

	memset(bytes, 0, NKEYS * sizeof(*bytes));
	memset(count, 0, NKEYS * sizeof(*count));
	*total = *n = 0;
	for (i = 0; i < m->nb; i++) {
		bytes[m->b[i].site] += m->b[i].size;
		count[m->b[i].site]++;
		*total += m->b[i].size;
		(*n)++;
	}
	for (i = 0; i < m->nr; i++) {
		bytes[m->r[i].site] += m->r[i].end - m->r[i].start;
		count[m->r[i].site]++;
		*total += m->r[i].end - m->r[i].start;
		(*n)++;
	}
}

/* After each model step: the first time a new maximum is reached. */
static void observe(struct model *m)
{
	int64_t bytes[NKEYS], count[NKEYS];
	uint64_t total, n;

	tally(m, bytes, count, &total, &n);
	m->steps++;
	if (total > m->max_total) {
		m->max_total = total;
		m->max_count = n;
		memcpy(m->max_bytes, bytes, sizeof(bytes));
		memcpy(m->max_cnt, count, sizeof(count));
	}
}

/* Heap and model agree on what is live now. */
static void compare_live(const struct heap *h, const struct model *m, int seq,
			 int ev)
{
	int64_t bytes[NKEYS], count[NKEYS];
	uint64_t total, n;
	size_t s;

	tally(m, bytes, count, &total, &n);
	if (h->live_bytes != total || h->live_count != n)
		cr_assert_fail("seq %d event %d: live %llu/%llu, model "
			       "%llu/%llu",
			       seq, ev, (unsigned long long)h->live_bytes,
			       (unsigned long long)h->live_count,
			       (unsigned long long)total,
			       (unsigned long long)n);
	for (s = 0; s < h->nsites; s++)
		if (h->sites[s].live_bytes != bytes[s] ||
		    h->sites[s].live_count != count[s])
			cr_assert_fail("seq %d event %d: site %zu live "
				       "%lld/%lld, model %lld/%lld",
				       seq, ev, s,
				       (long long)h->sites[s].live_bytes,
				       (long long)h->sites[s].live_count,
				       (long long)bytes[s],
				       (long long)count[s]);
}

/* After a settle: the peak breakdown is the one the model recorded. */
static void compare_peak(const struct heap *h, const struct model *m, int seq,
			 int ev)
{
	size_t s;

	if (h->peak_bytes != m->max_total || h->peak_count != m->max_count)
		cr_assert_fail("seq %d event %d: peak %llu/%llu, model "
			       "%llu/%llu",
			       seq, ev, (unsigned long long)h->peak_bytes,
			       (unsigned long long)h->peak_count,
			       (unsigned long long)m->max_total,
			       (unsigned long long)m->max_count);
	for (s = 0; s < NKEYS; s++) {
		int64_t pb = s < h->nsites ? h->sites[s].peak_bytes : 0;
		int64_t pc = s < h->nsites ? h->sites[s].peak_count : 0;

		if (pb != m->max_bytes[s] || pc != m->max_cnt[s])
			cr_assert_fail("seq %d event %d: site %zu peak "
				       "%lld/%lld, model %lld/%lld",
				       seq, ev, s, (long long)pb, (long long)pc,
				       (long long)m->max_bytes[s],
				       (long long)m->max_cnt[s]);
	}
}

static uint64_t rand_size(void)
{
	uint64_t r = rnd() % 100;

	if (r < 10)
		return 0; /* malloc(0) */
	if (r < 70)
		return rnd_range(1, 512);
	if (r < 95)
		return rnd_range(513, 65536);
	return rnd_range(65537, 1 << 20);
}

static uint64_t heap_addr(void)
{
	return HEAP_BASE + 16 * (rnd() % HEAP_SLOTS);
}

/* A live block's address, or an address we never handed out. */
static uint64_t some_block(const struct model *m, int live_pct)
{
	if (m->nb && (int)(rnd() % 100) < live_pct)
		return m->b[rnd() % m->nb].addr;
	return UNKNOWN_BASE + 16 * (rnd() % 100000);
}

/* Model of heap__alloc: a live address means its free was lost. */
static void m_alloc(struct model *m, uint64_t addr, uint64_t size,
		    uint32_t site)
{
	long i = find_block(m, addr);

	if (i >= 0) {
		drop_block(m, i);
		observe(m);
	}
	add_block(m, addr, size, site);
	m->allocs++;
	m->site_allocs[site]++;
	observe(m);
}

static void m_free(struct model *m, uint64_t addr)
{
	long i = find_block(m, addr);

	if (i < 0) {
		m->unknown_frees++;
		return;
	}
	drop_block(m, i);
	m->frees++;
	observe(m);
}

static void run_sequence(int seq)
{
	struct model m = { 0 };
	struct heap h;
	uint64_t keys[NKEYS];
	int64_t idx[NKEYS];
	uint64_t now = 0;
	size_t s;
	int ev;

	cr_assert_eq(heap__init(&h), 0);
	cr_assert_eq(sites__reset(&sites), 0); /* a fresh process: fresh ids */
	rng = 0x9E3779B97F4A7C15ULL * (seq + 1);
	for (s = 0; s < NKEYS; s++) {
		keys[s] = 0x401000 + s * 0x123 + (rnd() % 16);
		idx[s] = -1;
	}
	for (ev = 0; ev < NEVENTS; ev++) {
		uint64_t r = rnd() % 100, k = rnd() % NKEYS;
		uint32_t site;
		int64_t got;

		/* Sites are created on first sight, in order of use. */
		got = site_id(&h, keys[k]);
		if (idx[k] < 0) {
			bool seen = false;

			for (s = 0; s < NKEYS; s++)
				seen |= idx[s] == got;
			cr_assert(!seen && got >= 0 && got < NKEYS);
			idx[k] = got;
		}
		cr_assert_eq(got, idx[k], "site index moved");
		site = (uint32_t)got;
		now += 1 + rnd() % 1000;

		if (r < 35) { /* malloc */
			uint64_t addr = heap_addr(), size = rand_size();

			if (m.nb && rnd() % 100 < 5)
				addr = m.b[rnd() % m.nb].addr; /* lost free */
			cr_assert_eq(heap__alloc(&h, addr, size, site, now), 0);
			m_alloc(&m, addr, size, site);
		} else if (r < 60) { /* free */
			uint64_t q = rnd() % 100, addr;

			addr = q < 10 ? heap_addr() : some_block(&m, 78);
			heap__release(&h, addr);
			m_free(&m, addr);
		} else if (r < 80) { /* realloc */
			uint64_t q = rnd() % 100, size = rand_size();
			uint64_t old = some_block(&m, 85), addr;

			if (q < 15) { /* realloc(NULL, n) */
				addr = heap_addr();
				cr_assert_eq(heap__realloc(&h, 0, addr, size,
							   site, false, now),
					     0);
				m_alloc(&m, addr, size, site);
			} else if (q < 25) { /* realloc(p, 0) freed p */
				cr_assert_eq(heap__realloc(&h, old, 0, 0, site,
							   false, now),
					     0);
				m_free(&m, old);
			} else if (q < 70) { /* in place, or moved by mremap */
				bool remap = q >= 55;
				long i = find_block(&m, old);

				addr = old;
				while (remap && addr == old)
					addr = heap_addr();
				cr_assert_eq(heap__realloc(&h, old, addr, size,
							   site, remap, now),
					     0);
				/* One copy at a time: the old block goes first. */
				if (i >= 0) {
					drop_block(&m, i);
					observe(&m);
				}
				m_alloc(&m, addr, size, site);
			} else { /* moved: new first, then the old goes */
				do
					addr = heap_addr();
				while (addr == old);
				cr_assert_eq(heap__realloc(&h, old, addr, size,
							   site, false, now),
					     0);
				m_alloc(&m, addr, size, site);
				m_free(&m, old);
			}
		} else if (r < 90) { /* mmap, sometimes MAP_FIXED over ours */
			uint64_t start = MAP_BASE + PAGE * (rnd() % MAP_PAGES);
			uint64_t len = PAGE * rnd_range(1, 16);

			if (m.nr && rnd() % 100 < 15)
				start = m.r[rnd() % m.nr].start +
					PAGE * (rnd() % 2);
			cr_assert_eq(heap__mmap(&h, start, len, site, now), 0);
			cut_regs(&m, start, start + len);
			observe(&m);
			add_reg(&m, start, start + len, site);
			m.allocs++;
			m.site_allocs[site]++;
			observe(&m);
		} else if (r < 96) { /* munmap: whole, partial, holes, spans */
			uint64_t start = MAP_BASE + PAGE * (rnd() % MAP_PAGES);
			uint64_t len = PAGE * rnd_range(1, 32);

			if (m.nr && rnd() % 100 < 60) {
				const struct mreg *g = &m.r[rnd() % m.nr];
				uint64_t pages = (g->end - g->start) / PAGE;

				start = g->start + PAGE * (rnd() % pages);
				len = PAGE * rnd_range(1, pages + 2);
			}
			cr_assert_eq(heap__munmap(&h, start, len), 0);
			cut_regs(&m, start, start + len);
			observe(&m);
		} else { /* mremap: in place or moved, maybe onto ours */
			uint64_t old = UNTRACKED_MAP + PAGE * (rnd() % 64);
			uint64_t old_len = PAGE * rnd_range(1, 4), addr, len;
			int64_t msite;

			if (m.nr && rnd() % 100 < 85) {
				const struct mreg *g = &m.r[rnd() % m.nr];
				uint64_t pages = (g->end - g->start) / PAGE;
				uint64_t off = rnd() % pages;

				old = g->start + PAGE * off;
				old_len = PAGE * rnd_range(1, pages - off);
			}
			len = PAGE * rnd_range(1, 16);
			addr = old;
			if (rnd() % 100 < 60) {
				do
					addr = MAP_BASE +
					       PAGE * (rnd() % MAP_PAGES);
				while (addr < old + old_len &&
				       old < addr + len);
			}
			cr_assert_eq(heap__mremap(&h, old, old_len, addr, len,
						  now),
				     0);
			msite = reg_site(&m, old);
			if (msite >= 0)
				cut_regs(&m, old, old + old_len);
			observe(&m);
			cut_regs(&m, addr, addr + len);
			observe(&m);
			if (msite >= 0) {
				add_reg(&m, addr, addr + len, (uint32_t)msite);
				observe(&m);
			}
		}
		compare_live(&h, &m, seq, ev);
		if (ev % 97 == 96) { /* settling early changes nothing */
			heap__settle_peak(&h);
			compare_peak(&h, &m, seq, ev);
		}
	}
	heap__settle_peak(&h);
	compare_peak(&h, &m, seq, NEVENTS);
	compare_live(&h, &m, seq, NEVENTS);
	cr_assert_eq(h.allocs, m.allocs);
	cr_assert_eq(h.frees, m.frees);
	cr_assert_eq(h.unknown_frees, m.unknown_frees);
	cr_assert_eq(h.blocks.len, m.nb);
	cr_assert_eq(h.maps.len, m.nr);
	for (s = 0; s < h.nsites; s++)
		cr_assert_eq(h.sites[s].allocs, m.site_allocs[s]);
	/* The sequences are long enough to exercise every path. */
	cr_assert_gt(m.max_total, 0);
	cr_assert_gt(m.unknown_frees, 0);
	heap__free(&h);
	free(m.b);
	free(m.r);
}

Test(heap, randomized_against_brute_force, .timeout = 10)
{
	int seq;

	for (seq = 0; seq < NSEQ; seq++)
		run_sequence(seq);
}

/* ---- the census at attach (model/before.h, heap__adopt_census) ---------- */

#define OLD_BASE 0x10000000ULL

/* Census sites in h (a key per kind) and the window open, as at attach. */
static void census_sites(struct heap *h)
{
	int k;

	for (k = 0; k < CENSUS_KINDS; k++)
		h->before.site[k] = site_id(h, 0x900000 + k);
	cr_assert_eq(before__open_window(&h->before), 0);
}

/* A census of n heap blocks of 100 B each at OLD_BASE + 0x100 * i. */
static void old_blocks(struct census *c, size_t n)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->blocks = census__alloc_blocks(n);
	c->blocks_cap = n;
	for (i = 0; i < n; i++)
		c->blocks[i] =
			(struct census_block){ OLD_BASE + 0x100 * i, 100 };
	c->nblocks = n;
}

Test(heap, census_blocks_count_under_their_site_and_free_exactly, .timeout = 10)
{
	struct census c;
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	a = site_id(&h, KEY_A);
	heap__alloc(&h, 0x5000, 1000, a, 1);
	old_blocks(&c, 10);
	cr_assert_eq(heap__adopt_census(&h, &c, 2), 0);
	heap__settle_peak(&h);
	cr_assert_null(c.blocks, "the heap took the array");
	cr_assert_not(h.before.window);
	cr_assert_eq(h.live_bytes, 2000);
	cr_assert_eq(h.peak_bytes, 2000);
	expect_site(&h, h.before.site[CENSUS_HEAP], 1000, 10, 1000, 10);
	/* A free of an old block subtracts what the census counted. */
	cr_assert_eq(heap__release(&h, OLD_BASE + 0x300), 100);
	cr_assert_eq(heap__release(&h, OLD_BASE + 0x300), 0);
	cr_assert_eq(h.live_bytes, 1900);
	cr_assert_eq(h.unknown_frees, 1);
	expect_site(&h, h.before.site[CENSUS_HEAP], 900, 9, 1000, 10);
	/* realloc in place and moved: the old block goes, the new is a's. */
	heap__realloc(&h, OLD_BASE + 0x400, OLD_BASE + 0x400, 300, a, false, 3);
	heap__realloc(&h, OLD_BASE + 0x500, 0x9000, 500, a, false, 3);
	heap__settle_peak(&h);
	/* The move's transient is the peak: 2600 B, 800 of them old. */
	cr_assert_eq(h.peak_bytes, 2600);
	expect_site(&h, h.before.site[CENSUS_HEAP], 700, 7, 800, 8);
	expect_site(&h, a, 1800, 3, 1800, 3);
	cr_assert_eq(h.live_bytes, 2500);
	heap__free(&h);
}

/*
 * Every order of the census's read and the events of one address
 * (docs/design/census.md, section 5): allocated or freed while the census
 * was read, the census's entry is dropped; the table's block stays.
 */
Test(heap, census_drops_what_changed_while_it_was_read, .timeout = 10)
{
	struct census c;
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	a = site_id(&h, KEY_A);
	old_blocks(&c, 6);
	/* read, then free: the free missed the table, noted. */
	cr_assert_eq(heap__release(&h, OLD_BASE + 0x000), 0);
	/* alloc, then read: the table has it. */
	heap__alloc(&h, OLD_BASE + 0x100, 64, a, 1);
	/* free, alloc (both in the window), read: the table has it. */
	heap__release(&h, OLD_BASE + 0x200);
	heap__alloc(&h, OLD_BASE + 0x200, 48, a, 1);
	/* free, alloc, free, read: noted. */
	heap__release(&h, OLD_BASE + 0x300);
	heap__alloc(&h, OLD_BASE + 0x300, 32, a, 1);
	heap__release(&h, OLD_BASE + 0x300);
	/* realloc of an old block in the window: gone, and noted. */
	heap__realloc(&h, OLD_BASE + 0x400, 0xa000, 200, a, false, 1);
	cr_assert_eq(heap__adopt_census(&h, &c, 2), 0);
	heap__settle_peak(&h);
	cr_assert_eq(h.before.dropped, 5);
	expect_site(&h, h.before.site[CENSUS_HEAP], 100, 1, 100, 1);
	expect_site(&h, a, 312, 3, 312, 3);
	cr_assert_eq(h.live_bytes, 412);
	/* After the merge, an old block freed is the census's. */
	cr_assert_eq(heap__release(&h, OLD_BASE + 0x500), 100);
	cr_assert_eq(h.live_bytes, 312);
	heap__free(&h);
}

/* A free lost by the ring: an allocation at an old block's address. */
Test(heap, census_block_reused_without_a_free_is_dropped, .timeout = 10)
{
	struct census c;
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	a = site_id(&h, KEY_A);
	old_blocks(&c, 3);
	cr_assert_eq(heap__adopt_census(&h, &c, 1), 0);
	heap__alloc(&h, OLD_BASE + 0x100, 40, a, 2);
	heap__settle_peak(&h);
	expect_site(&h, h.before.site[CENSUS_HEAP], 200, 2, 300, 3);
	cr_assert_eq(h.live_bytes, 240);
	heap__free(&h);
}

Test(heap, census_regions_less_what_is_tracked_or_unmapped, .timeout = 10)
{
	struct census c = { 0 };
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	a = site_id(&h, KEY_A);
	/* In the window: a tracked mmap inside the arena's range, and an
	 * munmap of part of the other anonymous memory. */
	heap__mmap(&h, 0x40010000, 0x10000, a, 1);
	heap__munmap(&h, 0x50000000, 0x1000);
	c.regions = malloc(2 * sizeof(*c.regions));
	c.regions[0] =
		(struct census_region){ 0x40000000, 0x40100000, CENSUS_PYTHON };
	c.regions[1] =
		(struct census_region){ 0x50000000, 0x50004000, CENSUS_ANON };
	c.nregions = 2;
	cr_assert_eq(heap__adopt_census(&h, &c, 2), 0);
	heap__settle_peak(&h);
	expect_site(&h, h.before.site[CENSUS_PYTHON], 0xf0000, 2, 0xf0000, 2);
	expect_site(&h, h.before.site[CENSUS_ANON], 0x3000, 1, 0x3000, 1);
	cr_assert_eq(h.live_bytes, 0x100000 + 0x3000);
	/* The arena unmapped later: its pieces go, the tracked one stays. */
	heap__munmap(&h, 0x40000000, 0x100000);
	expect_site(&h, h.before.site[CENSUS_PYTHON], 0, 0, 0xf0000, 2);
	expect_site(&h, a, 0, 0, 0x10000, 1);
	cr_assert_eq(h.live_bytes, 0x3000);
	free(c.regions);
	heap__free(&h);
}

Test(heap, clone_keeps_census_blocks, .timeout = 10)
{
	struct census c;
	struct heap h, child;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	old_blocks(&c, 4);
	cr_assert_eq(heap__adopt_census(&h, &c, 1), 0);
	cr_assert_eq(heap__clone(&child, &h), 0);
	cr_assert_eq(heap__release(&child, OLD_BASE + 0x100), 100);
	cr_assert_eq(child.live_bytes, 300);
	cr_assert_eq(h.live_bytes, 400);
	cr_assert_eq(heap__release(&h, OLD_BASE + 0x100), 100);
	heap__free(&child);
	heap__free(&h);
}

/* A peak in the window held the census's kept blocks as well. */
Test(heap, census_raises_a_peak_reached_while_it_was_read, .timeout = 10)
{
	struct census c;
	struct heap h;
	int64_t a;

	cr_assert_eq(heap__init(&h), 0);
	census_sites(&h);
	a = site_id(&h, KEY_A);
	heap__alloc(&h, 0x5000, 5000, a, 1);
	heap__release(&h, 0x5000);
	old_blocks(&c, 10);
	cr_assert_eq(heap__adopt_census(&h, &c, 2), 0);
	heap__settle_peak(&h);
	cr_assert_eq(h.live_bytes, 1000);
	cr_assert_eq(h.peak_bytes, 6000);
	cr_assert_eq(h.peak_count, 11);
	expect_site(&h, a, 0, 0, 5000, 1);
	expect_site(&h, h.before.site[CENSUS_HEAP], 1000, 10, 1000, 10);
	heap__free(&h);
}
