// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "census/census.h"
#include "unit.h"

#define PAGE 4096ULL
#define NSMALL 10
#define NBIG 3
#define SMALL 100
#define BIG (1 << 20) /* over the mmap threshold: a mmapped chunk */
#define TOUCHED 256 /* pages of a plain mmap */

/* What the child allocated. */
struct report {
	uint64_t small[NSMALL], big[NBIG], area;
};

struct child {
	pid_t pid;
	int go; /* closing it lets the child exit */
	struct report r;
};

/* The child: a few mallocs, a touched mmap, then wait for the parent. */
static void child_main(int up, int down)
{
	struct report r;
	char *a, c;
	int i;

	for (i = 0; i < NSMALL; i++)
		r.small[i] =
			(uint64_t)(uintptr_t)memset(malloc(SMALL), 7, SMALL);
	for (i = 0; i < NBIG; i++)
		r.big[i] = (uint64_t)(uintptr_t)memset(malloc(BIG), 7, BIG);
	a = mmap(NULL, 4 * TOUCHED * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		_exit(1);
	madvise(a, 4 * TOUCHED * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < TOUCHED; i++)
		a[(TOUCHED + i) * PAGE] = 1; /* not a glibc chunk header */
	r.area = (uint64_t)(uintptr_t)a + TOUCHED * PAGE;
	if (write(up, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	while (read(down, &c, 1) > 0)
		;
	_exit(0);
}

/* The child up, its report in; it waits until end_child. */
static void start_child(struct child *ch)
{
	ch->pid = unit_child_start(child_main, &ch->r, sizeof(ch->r), &ch->go);
	cr_assert_gt(ch->pid, 0);
}

static void end_child(struct child *ch)
{
	unit_child_end(ch->pid, ch->go);
}

/* The block at addr (binary search: the blocks are sorted), or NULL. */
static const struct census_block *block_at(const struct census *c,
					   uint64_t addr)
{
	size_t lo = 0, hi = c->nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->blocks[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nblocks && c->blocks[lo].addr == addr ? &c->blocks[lo]
							     : NULL;
}

/* Sorted without duplicates; each kind's totals are its entries' sums. */
static void expect_consistent(const struct census *c)
{
	uint64_t bytes[CENSUS_KINDS] = { 0 }, count[CENSUS_KINDS] = { 0 };
	size_t i;
	int k;

	for (i = 0; i < c->nblocks; i++) {
		if (i)
			cr_assert_gt(c->blocks[i].addr, c->blocks[i - 1].addr,
				     "blocks %zu and %zu out of order", i - 1,
				     i);
		bytes[census_block__kind(&c->blocks[i])] +=
			census_block__size(&c->blocks[i]);
		count[census_block__kind(&c->blocks[i])]++;
	}
	for (i = 0; i < c->nregions; i++) {
		if (i)
			cr_assert_leq(c->regions[i - 1].hi, c->regions[i].lo);
		bytes[c->regions[i].kind] +=
			c->regions[i].hi - c->regions[i].lo;
		count[c->regions[i].kind]++;
	}
	for (k = 0; k < CENSUS_KINDS; k++) {
		cr_assert_eq(c->bytes[k], bytes[k], "kind %d", k);
		cr_assert_eq(c->count[k], count[k], "kind %d", k);
	}
}

Test(census, known_child, .timeout = 10)
{
	struct census c = { 0 };
	const struct census_block *b;
	struct child ch;
	size_t i, n = 0;

	start_child(&ch);
	cr_assert_eq(census__take(ch.pid, &c), 0);
	expect_consistent(&c);
	cr_assert_gt(c.took_ns, 0);
	cr_assert_gt(c.read_calls, 0);
	cr_assert_gt(c.read_bytes, 0);
	cr_assert_str_eq(c.warning, "");
	for (i = 0; i < NSMALL; i++) {
		b = block_at(&c, ch.r.small[i]);
		cr_assert_not_null(b, "malloc(%d) %#lx not found", SMALL,
				   (unsigned long)ch.r.small[i]);
		cr_assert_eq(census_block__kind(b), CENSUS_HEAP);
		cr_assert_geq(census_block__size(b), SMALL);
		cr_assert_lt(census_block__size(b), SMALL + 24);
	}
	for (i = 0; i < NBIG; i++) {
		b = block_at(&c, ch.r.big[i]);
		cr_assert_not_null(b);
		cr_assert_eq(census_block__kind(b), CENSUS_MMAPPED);
		cr_assert_geq(census_block__size(b), BIG);
		cr_assert_lt(census_block__size(b), BIG + PAGE);
	}
	/* The touched mmap is one run; the mmapped chunks are no "other". */
	for (i = 0; i < c.nregions; i++) {
		const struct census_region *r = &c.regions[i];

		if (r->lo == ch.r.area && r->hi == ch.r.area + TOUCHED * PAGE)
			n++;
		cr_assert(r->hi <= ch.r.big[0] || r->lo > ch.r.big[0]);
	}
	cr_assert_eq(n, 1, "the touched range is not one region");
	census__free(&c);
	cr_assert_null(c.blocks);
	end_child(&ch);
}

Test(census, dead_pid, .timeout = 10)
{
	struct census c = { 0 };
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	cr_assert_eq(census__take(pid, &c), -ESRCH);
	cr_assert_eq(c.nblocks, 0);
}

/* Three ascending runs as three walkers append them, one repeated. */
Test(census, runs_are_ordered, .timeout = 10)
{
	static const uint64_t first[] = { 0x5000, 0x1000, 0x3000, 0x1000 };
	static const int len[] = { 100, 50, 70, 1 };
	struct census c = { 0 };
	size_t i;
	int r, j;

	for (r = 0; r < 4; r++)
		for (j = 0; j < len[r]; j++)
			cr_assert_eq(census__add_block(&c, first[r] + 16 * j,
						       16 + r, CENSUS_HEAP),
				     0);
	cr_assert_eq(census__order_blocks(&c), 0);
	cr_assert_eq(c.nblocks, 220);
	cr_assert_eq(c.count[CENSUS_HEAP], 220);
	cr_assert_eq(c.blocks[0].addr, 0x1000);
	cr_assert_eq(c.blocks[50].addr, 0x3000);
	cr_assert_eq(c.blocks[120].addr, 0x5000);
	/* One of the two at 0x1000 is kept, and only it is counted. */
	cr_assert_eq(c.bytes[CENSUS_HEAP],
		     100 * 16 + 49 * 17 + 70 * 18 +
			     census_block__size(&c.blocks[0]));
	for (i = 1; i < c.nblocks; i++)
		cr_assert_gt(c.blocks[i].addr, c.blocks[i - 1].addr);
	census__free(&c);
}

/* Runs that interleave (a torn walk) still come out sorted. */
Test(census, interleaved_runs_are_sorted, .timeout = 10)
{
	struct census c = { 0 };
	size_t i;

	for (i = 0; i < 1000; i++)
		census__add_block(&c, 0x10000 + 32 * i, 8, CENSUS_HEAP);
	for (i = 0; i < 1000; i++)
		census__add_block(&c, 0x10010 + 32 * i, 8, CENSUS_MMAPPED);
	cr_assert_eq(census__order_blocks(&c), 0);
	cr_assert_eq(c.nblocks, 2000);
	for (i = 0; i < c.nblocks; i++)
		cr_assert_eq(c.blocks[i].addr, 0x10000 + 16 * i);
	census__free(&c);
}

/* Millions of blocks: the array grows and keeps every one. */
Test(census, many_blocks, .timeout = 10)
{
	struct census c = { 0 };
	size_t i, n = 3000000;

	for (i = 0; i < n; i++)
		cr_assert_eq(census__add_block(&c, 16 * (i + 1), i & 0xfff,
					       CENSUS_HEAP),
			     0);
	cr_assert_eq(c.nblocks, n);
	cr_assert_geq(c.blocks_cap, n);
	for (i = 0; i < n; i += 4099)
		cr_assert_eq(census_block__size(&c.blocks[i]), i & 0xfff);
	cr_assert_eq(census__order_blocks(&c), 0);
	cr_assert_eq(c.nblocks, n);
	census__free(&c);
}

Test(census, first_warning_kept, .timeout = 10)
{
	struct census c = { 0 };

	census__warn(&c, "census: %s %d", "first", 1);
	census__warn(&c, "census: second");
	cr_assert_str_eq(c.warning, "census: first 1");
}

Test(census, unclaimed_pieces, .timeout = 10)
{
	struct census c = { 0 };
	uint64_t lo = 0x1000, hi;

	census__claim(&c, 0x5000, 0x6000);
	census__claim(&c, 0x2000, 0x3000);
	census__claim(&c, 0x2800, 0x4000); /* overlaps: merged */
	census__sort_claimed(&c);
	cr_assert_eq(c.nclaimed, 2);
	cr_assert(census__next_unclaimed(&c, &lo, 0x8000, &hi));
	cr_assert_eq(lo, 0x1000);
	cr_assert_eq(hi, 0x2000);
	lo = hi;
	cr_assert(census__next_unclaimed(&c, &lo, 0x8000, &hi));
	cr_assert_eq(lo, 0x4000);
	cr_assert_eq(hi, 0x5000);
	lo = hi;
	cr_assert(census__next_unclaimed(&c, &lo, 0x8000, &hi));
	cr_assert_eq(lo, 0x6000);
	cr_assert_eq(hi, 0x8000);
	lo = 0x5000;
	cr_assert_not(census__next_unclaimed(&c, &lo, 0x6000, &hi));
	census__free(&c);
}
