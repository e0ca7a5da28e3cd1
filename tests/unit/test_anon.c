// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "census/anon.h"
#include "census/census.h"
#include "census/vmem.h"
#include "unit.h"

#define AREA (64ULL << 20)
#define PAGE 4096ULL

/* The child touches pages [lo, hi) of its area: 400 + 300 + 300. */
static const uint64_t runs[][2] = { { 10, 410 },
				    { 1000, 1300 },
				    { 5000, 5300 } };
#define NRUNS 3
#define TOUCHED 1000

/* What the child tells the parent. */
struct report {
	uint64_t area; /* the 64 MiB mapping */
	uint64_t stack; /* a local of its second thread */
};

struct child {
	pid_t pid;
	int go; /* closing it lets the child exit */
	struct report r;
};

static void *sleeper(void *arg)
{
	volatile char used[64 << 10]; /* 16 pages of stack, present */
	uint64_t *out = arg;

	memset((char *)used, 1, sizeof(used));
	*out = (uint64_t)(uintptr_t)used;
	pause();
	return NULL;
}

/* The child: the known runs touched, a thread on its own stack, then wait. */
static void child_main(int up, int down)
{
	char *a = mmap(NULL, AREA, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct report r = { .area = (uint64_t)(uintptr_t)a };
	volatile uint64_t stack = 0;
	pthread_t t;
	uint64_t p;
	int i;
	char c;

	if (a == MAP_FAILED)
		_exit(1);
	madvise(a, AREA, MADV_NOHUGEPAGE); /* one touch, one page */
	for (i = 0; i < NRUNS; i++)
		for (p = runs[i][0]; p < runs[i][1]; p++)
			a[p * PAGE] = 1; /* not a glibc chunk header */
	if (pthread_create(&t, NULL, sleeper, (void *)&stack))
		_exit(1);
	while (!stack)
		usleep(1000);
	r.stack = stack;
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

/* Bytes of CENSUS_ANON regions inside [lo, hi), and how many. */
static uint64_t anon_in(const struct census *c, uint64_t lo, uint64_t hi,
			size_t *n)
{
	uint64_t sum = 0;
	size_t i;

	*n = 0;
	for (i = 0; i < c->nregions; i++) {
		const struct census_region *r = &c->regions[i];

		if (r->kind != CENSUS_ANON || r->hi <= lo || r->lo >= hi)
			continue;
		cr_assert_geq(r->lo, lo, "region %#lx-%#lx crosses the area",
			      (unsigned long)r->lo, (unsigned long)r->hi);
		cr_assert_leq(r->hi, hi);
		sum += r->hi - r->lo;
		(*n)++;
	}
	return sum;
}

Test(anon, present_runs_exactly, .timeout = 10)
{
	struct census c = { 0 };
	struct child ch;
	uint64_t a;
	size_t n, i;
	long before;

	start_child(&ch);
	a = ch.r.area;
	before = unit_rss_anon(ch.pid);
	cr_assert_eq(census__take(ch.pid, &c), 0);
	cr_assert_eq(anon_in(&c, a, a + AREA, &n), TOUCHED * PAGE);
	cr_assert_eq(n, NRUNS);
	for (i = 0; i < c.nregions; i++) {
		const struct census_region *r = &c.regions[i];

		if (r->lo >= a && r->hi <= a + AREA) {
			cr_assert_eq((r->lo - a) / PAGE, runs[0][0]);
			cr_assert_eq((r->hi - a) / PAGE, runs[0][1]);
			break;
		}
	}
	/* Regions are sorted and disjoint. */
	for (i = 1; i < c.nregions; i++)
		cr_assert_leq(c.regions[i - 1].hi, c.regions[i].lo);
	cr_assert_eq(unit_rss_anon(ch.pid), before,
		     "the census faulted pages in");
	census__free(&c);
	end_child(&ch);
}

Test(anon, thread_stack_is_not_counted, .timeout = 10)
{
	struct census c = { 0 };
	struct child ch;
	size_t i;

	start_child(&ch);
	cr_assert_eq(census__take(ch.pid, &c), 0);
	for (i = 0; i < c.nregions; i++)
		cr_assert(c.regions[i].hi <= ch.r.stack ||
				  c.regions[i].lo > ch.r.stack,
			  "the thread's stack %#lx is in %#lx-%#lx",
			  (unsigned long)ch.r.stack,
			  (unsigned long)c.regions[i].lo,
			  (unsigned long)c.regions[i].hi);
	census__free(&c);
	end_child(&ch);
}

Test(anon, claimed_ranges_are_left_out, .timeout = 10)
{
	struct census c = { 0 };
	struct vmem m;
	struct child ch;
	uint64_t a;
	size_t n;

	start_child(&ch);
	a = ch.r.area;
	/* A walker claimed the second run and half the third. */
	cr_assert_eq(census__claim(&c, a + 1000 * PAGE, a + 1300 * PAGE), 0);
	cr_assert_eq(census__claim(&c, a + 5150 * PAGE, a + 6000 * PAGE), 0);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	cr_assert_eq(anon__census(&m, &c), 0);
	vmem__close(&m);
	cr_assert_eq(anon_in(&c, a, a + AREA, &n), (400 + 150) * PAGE);
	cr_assert_eq(n, 2);
	census__free(&c);
	end_child(&ch);
}

Test(anon, which_mappings_count, .timeout = 10)
{
	struct vma v = { .perms = "rw-p", .path = "" };

	cr_assert(anon__private_rw(&v));
	v.path = "[heap]";
	cr_assert(anon__private_rw(&v));
	v.path = "[anon:cpython:pymalloc]";
	cr_assert(anon__private_rw(&v));
	v.path = "[stack]";
	cr_assert_not(anon__private_rw(&v));
	v.path = "[vvar]";
	cr_assert_not(anon__private_rw(&v));
	v.path = "";
	memcpy(v.perms, "rw-s", 5);
	cr_assert_not(anon__private_rw(&v));
	memcpy(v.perms, "rw-p", 5);
	v.inode = 1234;
	v.path = "/usr/lib/libc.so.6";
	cr_assert_not(anon__private_rw(&v));
}
