// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "procs/tracee.h"
#include "unit.h"

int memprof_tracee_target(int x);

__attribute__((noinline, used)) int memprof_tracee_target(int x)
{
	volatile int v = x;

	return v * 11 + 4;
}

/* A tracee object standing for pid (identity read from ourselves). */
static struct tracee *fake(pid_t pid)
{
	struct tracee *t = tracee__new(getpid(), false);

	cr_assert_not_null(t);
	t->pid = pid;
	return t;
}

Test(tracee, new_reads_identity, .timeout = 10)
{
	struct tracee *t = tracee__new(getpid(), true);

	cr_assert_not_null(t);
	cr_assert_eq(t->pid, getpid());
	cr_assert(t->primary);
	cr_assert_str_eq(t->comm, "test_tracee");
	cr_assert_not_null(t->cmdline);
	cr_assert_gt(strlen(t->cmdline), 0);
	cr_assert_null(strchr(t->cmdline, '\n'));
	cr_assert_eq(t->heap.live_bytes, 0);
	cr_assert_eq(t->heap.blocks.len, 0);
	cr_assert_eq(t->sym.pid, getpid());
	cr_assert_eq(t->nlinks, 0);
	tracee__delete(t);
	tracee__delete(NULL);
}

Test(tracee, resolve_sites_names_new_sites, .timeout = 10)
{
	struct tracee *t = tracee__new(getpid(), false);
	uintptr_t fn = (uintptr_t)&memprof_tracee_target;

	cr_assert_not_null(t);
	cr_assert_eq(sites__lookup_or_add(&t->sites, fn + 5, 0, NULL), 0);
	tracee__resolve_sites(t);
	cr_assert_eq(t->sites.nresolved, 1);
	cr_assert_str_eq(t->sites.v[0].native.function, "memprof_tracee_"
							"target");
	cr_assert_eq(t->sites.v[0].native.offset, 5);
	cr_assert_eq(t->sites.v[0].native.addr, fn + 5);

	/* Only sites created since the last call are resolved. */
	cr_assert_eq(sites__lookup_or_add(&t->sites, 0x10, 0, NULL), 1);
	cr_assert_eq(sites__lookup_or_add(&t->sites, fn + 2, 0, NULL), 2);
	tracee__resolve_sites(t);
	cr_assert_eq(t->sites.nresolved, 3);
	cr_assert_str_eq(t->sites.v[0].native.function, "memprof_tracee_"
							"target");
	cr_assert_null(t->sites.v[1].native.function, "0x10 is not mapped");
	cr_assert_str_eq(t->sites.v[2].native.function, "memprof_tracee_"
							"target");
	cr_assert_eq(t->sites.v[2].native.offset, 2);
	tracee__resolve_sites(t);
	cr_assert_eq(t->sites.nresolved, 3);
	cr_assert_eq(memprof_tracee_target(1), 15);
	tracee__delete(t);
	symbolizer__cache_clear();
}

Test(tracee, table_add_find_remove, .timeout = 10)
{
	struct tracees ts = { 0 };
	struct tracee *t[40];
	int i;

	/* More than the initial capacity. */
	for (i = 0; i < 40; i++) {
		t[i] = fake(1000 + i);
		cr_assert_eq(tracees__add(&ts, t[i]), 0);
	}
	cr_assert_eq(ts.len, 40);
	for (i = 39; i >= 0; i--)
		cr_assert_eq(tracees__find(&ts, 1000 + i), t[i]);
	cr_assert_null(tracees__find(&ts, 999));
	cr_assert_null(tracees__find(&ts, 1040));

	tracees__remove(&ts, 1005);
	cr_assert_eq(ts.len, 39);
	cr_assert_null(tracees__find(&ts, 1005));
	for (i = 0; i < 40; i++)
		if (i != 5)
			cr_assert_eq(tracees__find(&ts, 1000 + i), t[i]);
	/* Removing an unknown pid changes nothing. */
	tracees__remove(&ts, 4242);
	cr_assert_eq(ts.len, 39);
	tracees__free(&ts);
	cr_assert_eq(ts.len, 0);
	cr_assert_null(ts.v);
	cr_assert_null(ts.last);
}

Test(tracee, remove_invalidates_the_last_cache, .timeout = 10)
{
	struct tracees ts = { 0 };
	struct tracee *a = fake(101), *b = fake(102), *c = fake(103),
		      *d = fake(104);

	cr_assert_eq(tracees__add(&ts, a), 0);
	cr_assert_eq(tracees__add(&ts, b), 0);
	cr_assert_eq(tracees__add(&ts, c), 0);
	cr_assert_eq(tracees__add(&ts, d), 0);

	/* The cached one is removed: the cache must not answer for it. */
	cr_assert_eq(tracees__find(&ts, 104), d);
	cr_assert_eq(ts.last, d);
	tracees__remove(&ts, 104);
	cr_assert_null(ts.last);
	cr_assert_null(tracees__find(&ts, 104));
	cr_assert_eq(ts.len, 3);

	/* Another one is removed: the cached one stays valid. */
	cr_assert_eq(tracees__find(&ts, 103), c);
	tracees__remove(&ts, 101);
	cr_assert_eq(ts.last, c);
	cr_assert_eq(tracees__find(&ts, 103), c);
	cr_assert_eq(tracees__find(&ts, 102), b);
	cr_assert_null(tracees__find(&ts, 101));
	cr_assert_eq(ts.len, 2);

	/* A pid that comes back is a new tracee, found as such. */
	a = fake(104);
	cr_assert_eq(tracees__add(&ts, a), 0);
	cr_assert_eq(tracees__find(&ts, 104), a);
	tracees__free(&ts);
}
