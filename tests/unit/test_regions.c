// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "model/regions.h"
#include "unit.h"

/* Every callback, in order. */
struct cut_log {
	struct {
		uint32_t site;
		uint64_t bytes;
		int whole;
	} v[16];
	int n;
};

static void record(void *ctx, uint32_t site, uint64_t bytes, int whole)
{
	struct cut_log *l = ctx;

	cr_assert_lt(l->n, 16);
	l->v[l->n].site = site;
	l->v[l->n].bytes = bytes;
	l->v[l->n].whole = whole;
	l->n++;
}

static void expect_cut(const struct cut_log *l, int i, uint32_t site,
		       uint64_t bytes, int whole)
{
	cr_assert_gt(l->n, i, "callback %d missing", i);
	cr_assert_eq(l->v[i].site, site, "callback %d site", i);
	cr_assert_eq(l->v[i].bytes, bytes, "callback %d bytes", i);
	cr_assert_eq(l->v[i].whole, whole, "callback %d whole", i);
}

static void expect_region(const struct regions *r, size_t i, uint64_t start,
			  uint64_t end, uint32_t site)
{
	cr_assert_gt(r->len, i, "region %zu missing", i);
	cr_assert_eq(r->v[i].start, start, "region %zu start 0x%llx", i,
		     (unsigned long long)r->v[i].start);
	cr_assert_eq(r->v[i].end, end, "region %zu end 0x%llx", i,
		     (unsigned long long)r->v[i].end);
	cr_assert_eq(r->v[i].site, site, "region %zu site", i);
}

/* [0x1000,0x3000) site 1, [0x5000,0x8000) site 2, [0xa000,0xb000) site 3 */
static void three(struct regions *r)
{
	memset(r, 0, sizeof(*r));
	/* Added out of order: add keeps them sorted. */
	cr_assert_eq(regions__add(r, 0x5000, 0x8000, 2), 0);
	cr_assert_eq(regions__add(r, 0xa000, 0xb000, 3), 0);
	cr_assert_eq(regions__add(r, 0x1000, 0x3000, 1), 0);
}

Test(regions, add_keeps_sorted_and_totals, .timeout = 10)
{
	struct regions r;

	three(&r);
	cr_assert_eq(r.len, 3);
	expect_region(&r, 0, 0x1000, 0x3000, 1);
	expect_region(&r, 1, 0x5000, 0x8000, 2);
	expect_region(&r, 2, 0xa000, 0xb000, 3);
	cr_assert_eq(regions__total(&r), 0x2000 + 0x3000 + 0x1000);
	regions__free(&r);
	cr_assert_eq(r.len, 0);
	cr_assert_eq(regions__total(&r), 0);
}

Test(regions, add_many_grows, .timeout = 10)
{
	struct regions r = { 0 };
	uint64_t i;

	/* Descending starts: every add inserts at the front. */
	for (i = 1000; i > 0; i--)
		cr_assert_eq(regions__add(&r, i * 0x10000, i * 0x10000 + 0x1000,
					  (uint32_t)i),
			     0);
	cr_assert_eq(r.len, 1000);
	for (i = 0; i < 1000; i++)
		expect_region(&r, i, (i + 1) * 0x10000,
			      (i + 1) * 0x10000 + 0x1000, (uint32_t)(i + 1));
	cr_assert_eq(regions__total(&r), 1000 * 0x1000);
	regions__free(&r);
}

Test(regions, site_at, .timeout = 10)
{
	struct regions r;

	three(&r);
	cr_assert_eq(regions__site_at(&r, 0x0fff), -1);
	cr_assert_eq(regions__site_at(&r, 0x1000), 1);
	cr_assert_eq(regions__site_at(&r, 0x2fff), 1);
	cr_assert_eq(regions__site_at(&r, 0x3000), -1, "end is exclusive");
	cr_assert_eq(regions__site_at(&r, 0x4fff), -1);
	cr_assert_eq(regions__site_at(&r, 0x5000), 2);
	cr_assert_eq(regions__site_at(&r, 0x7abc), 2);
	cr_assert_eq(regions__site_at(&r, 0xa800), 3);
	cr_assert_eq(regions__site_at(&r, 0xb000), -1);
	cr_assert_eq(regions__site_at(&r, UINT64_MAX), -1);
	regions__free(&r);

	memset(&r, 0, sizeof(r));
	cr_assert_eq(regions__site_at(&r, 0x1000), -1, "empty set");
}

Test(regions, cut_exact_region, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	cr_assert_eq(regions__cut(&r, 0x5000, 0x8000, record, &l), 0);
	cr_assert_eq(l.n, 1);
	expect_cut(&l, 0, 2, 0x3000, 1);
	cr_assert_eq(r.len, 2);
	expect_region(&r, 0, 0x1000, 0x3000, 1);
	expect_region(&r, 1, 0xa000, 0xb000, 3);
	cr_assert_eq(regions__site_at(&r, 0x6000), -1);
	cr_assert_eq(regions__total(&r), 0x3000);
	regions__free(&r);
}

Test(regions, cut_head, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	/* Starts before the region: only the overlap is reported. */
	cr_assert_eq(regions__cut(&r, 0x4000, 0x6000, record, &l), 0);
	cr_assert_eq(l.n, 1);
	expect_cut(&l, 0, 2, 0x1000, 0);
	cr_assert_eq(r.len, 3);
	expect_region(&r, 1, 0x6000, 0x8000, 2);
	cr_assert_eq(regions__site_at(&r, 0x5fff), -1);
	cr_assert_eq(regions__site_at(&r, 0x6000), 2);
	regions__free(&r);
}

Test(regions, cut_tail, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	cr_assert_eq(regions__cut(&r, 0x2000, 0x3000, record, &l), 0);
	cr_assert_eq(l.n, 1);
	expect_cut(&l, 0, 1, 0x1000, 0);
	expect_region(&r, 0, 0x1000, 0x2000, 1);
	expect_region(&r, 1, 0x5000, 0x8000, 2);
	cr_assert_eq(regions__total(&r), 0x1000 + 0x3000 + 0x1000);
	regions__free(&r);
}

/*
 * A hole in the middle leaves two regions where there was one: the
 * callback reports the bytes and whole = -1 (one region more), so a
 * per-region allocation count stays right when both halves are freed.
 */
Test(regions, cut_hole_splits, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	cr_assert_eq(regions__cut(&r, 0x6000, 0x7000, record, &l), 0);
	cr_assert_eq(l.n, 1);
	expect_cut(&l, 0, 2, 0x1000, -1);
	cr_assert_eq(r.len, 4);
	expect_region(&r, 0, 0x1000, 0x3000, 1);
	expect_region(&r, 1, 0x5000, 0x6000, 2);
	expect_region(&r, 2, 0x7000, 0x8000, 2);
	expect_region(&r, 3, 0xa000, 0xb000, 3);
	cr_assert_eq(regions__site_at(&r, 0x6800), -1);
	cr_assert_eq(regions__site_at(&r, 0x7000), 2);

	/* Each half then goes away whole. */
	l.n = 0;
	cr_assert_eq(regions__cut(&r, 0x5000, 0x6000, record, &l), 0);
	cr_assert_eq(regions__cut(&r, 0x7000, 0x8000, record, &l), 0);
	cr_assert_eq(l.n, 2);
	expect_cut(&l, 0, 2, 0x1000, 1);
	expect_cut(&l, 1, 2, 0x1000, 1);
	cr_assert_eq(r.len, 2);
	regions__free(&r);
}

Test(regions, cut_spanning_several, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	/* Tail of 1, all of 2, head of 3. */
	cr_assert_eq(regions__cut(&r, 0x2800, 0xa400, record, &l), 0);
	cr_assert_eq(l.n, 3);
	expect_cut(&l, 0, 1, 0x800, 0);
	expect_cut(&l, 1, 2, 0x3000, 1);
	expect_cut(&l, 2, 3, 0x400, 0);
	cr_assert_eq(r.len, 2);
	expect_region(&r, 0, 0x1000, 0x2800, 1);
	expect_region(&r, 1, 0xa400, 0xb000, 3);
	cr_assert_eq(regions__total(&r), 0x1800 + 0xc00);
	regions__free(&r);

	/* Everything at once. */
	three(&r);
	l.n = 0;
	cr_assert_eq(regions__cut(&r, 0, UINT64_MAX, record, &l), 0);
	cr_assert_eq(l.n, 3);
	expect_cut(&l, 0, 1, 0x2000, 1);
	expect_cut(&l, 1, 2, 0x3000, 1);
	expect_cut(&l, 2, 3, 0x1000, 1);
	cr_assert_eq(r.len, 0);
	cr_assert_eq(regions__total(&r), 0);
	regions__free(&r);
}

Test(regions, cut_of_nothing_reports_nothing, .timeout = 10)
{
	struct regions r;
	struct cut_log l = { 0 };

	three(&r);
	cr_assert_eq(regions__cut(&r, 0x3000, 0x5000, record, &l), 0);
	cr_assert_eq(regions__cut(&r, 0xb000, 0xc000, record, &l), 0);
	cr_assert_eq(regions__cut(&r, 0x0, 0x1000, record, &l), 0);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(r.len, 3);
	cr_assert_eq(regions__total(&r), 0x6000);
	regions__free(&r);
}

Test(regions, copy_is_independent, .timeout = 10)
{
	struct regions r, c;
	struct cut_log l = { 0 };

	three(&r);
	cr_assert_eq(regions__copy(&c, &r), 0);
	cr_assert_eq(c.len, 3);
	cr_assert_eq(regions__cut(&r, 0x1000, 0x3000, record, &l), 0);
	cr_assert_eq(r.len, 2);
	cr_assert_eq(c.len, 3);
	expect_region(&c, 0, 0x1000, 0x3000, 1);
	/* The copy can grow on its own. */
	cr_assert_eq(regions__add(&c, 0x20000, 0x21000, 9), 0);
	cr_assert_eq(c.len, 4);
	cr_assert_eq(regions__site_at(&r, 0x20000), -1);
	regions__free(&r);
	regions__free(&c);

	memset(&r, 0, sizeof(r));
	cr_assert_eq(regions__copy(&c, &r), 0);
	cr_assert_eq(c.len, 0);
	cr_assert_null(c.v);
}

struct gaps {
	uint64_t lo[8], hi[8];
	int n;
};

static void gap(void *ctx, uint64_t lo, uint64_t hi)
{
	struct gaps *g = ctx;

	g->lo[g->n] = lo;
	g->hi[g->n++] = hi;
}

/* three(): [0x1000,0x3000) [0x5000,0x8000) [0xa000,0xb000). */
Test(regions, uncovered_gives_the_gaps_in_order, .timeout = 10)
{
	struct regions r = { 0 };
	struct gaps g = { .n = 0 };

	three(&r);
	regions__uncovered(&r, 0x800, 0x9000, gap, &g);
	cr_assert_eq(g.n, 3);
	cr_assert_eq(g.lo[0], 0x800);
	cr_assert_eq(g.hi[0], 0x1000);
	cr_assert_eq(g.lo[1], 0x3000);
	cr_assert_eq(g.hi[1], 0x5000);
	cr_assert_eq(g.lo[2], 0x8000);
	cr_assert_eq(g.hi[2], 0x9000);
	g.n = 0;
	regions__uncovered(&r, 0x5100, 0x7f00, gap, &g);
	cr_assert_eq(g.n, 0, "inside one region: nothing uncovered");
	regions__uncovered(&r, 0xb000, 0xc000, gap, &g);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.lo[0], 0xb000);
	cr_assert_eq(g.hi[0], 0xc000);
	regions__free(&r);
}

Test(regions, merge_interleaves_sorted_regions, .timeout = 10)
{
	struct region add[] = { { 0x0, 0x800, 7 },
				{ 0x3000, 0x4000, 8 },
				{ 0xc000, 0xd000, 9 } };
	struct regions r = { 0 };

	three(&r);
	cr_assert_eq(regions__merge(&r, add, 3), 0);
	cr_assert_eq(r.len, 6);
	expect_region(&r, 0, 0x0, 0x800, 7);
	expect_region(&r, 1, 0x1000, 0x3000, 1);
	expect_region(&r, 2, 0x3000, 0x4000, 8);
	expect_region(&r, 5, 0xc000, 0xd000, 9);
	cr_assert_eq(regions__site_at(&r, 0x3800), 8);
	regions__free(&r);
}
