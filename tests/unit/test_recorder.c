// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The in-process recorder (user/recorder/recorder.c, preloaded): the
 * records it writes for programs whose allocations are known to the
 * byte (tests/progs: allocs, threads, forker), a shell that forks and
 * execs two of them (each child records as itself), and Python. The test
 * is the agent's side: it makes the ring, passes its memfd and
 * LD_PRELOAD to the child, and reads the records when the child is done.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include "memprof.h"
#include "recorder/shmring.h"
#include "unit.h"

#define SO "build/libmemprof-recorder.so"
#define MAX_RECS 200000

/* Every record the child wrote, copied out of the ring. */
struct recs {
	unsigned char *v[MAX_RECS];
	uint32_t len[MAX_RECS];
	size_t n;
};

static bool keep(const void *data, uint32_t len, void *ctx)
{
	struct recs *r = ctx;

	if (r->n == MAX_RECS)
		return true;
	r->v[r->n] = malloc(len);
	memcpy(r->v[r->n], data, len);
	r->len[r->n++] = len;
	return true;
}

static void free_recs(struct recs *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r);
}

/*
 * Run argv with the recorder given a new ring, read by us (consumer set)
 * or by nobody; its records.
 */
static struct recs *run_ring(char *const argv[], bool with_ring, bool consumer)
{
	char so[PATH_MAX], fdtext[16];
	struct recs *out = calloc(1, sizeof(*out));
	struct shmring ring;
	int status;
	pid_t pid;

	cr_assert_not_null(realpath(SO, so), "%s is not built", SO);
	cr_assert_eq(shmring__create(&ring, 16 << 20), 0);
	ring.hdr->consumer = consumer ? (uint32_t)getpid() : 0;
	pid = fork();
	if (pid == 0) {
		fcntl(ring.fd, F_SETFD, 0); /* the child keeps the memfd */
		snprintf(fdtext, sizeof(fdtext), "%d", ring.fd);
		setenv("LD_PRELOAD", so, 1);
		if (with_ring)
			setenv("MEMPROF_RECORDER_FD", fdtext, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s: status %d", argv[0], status);
	shmring__consume(&ring, keep, out);
	cr_assert_eq(ring.hdr->dropped, 0);
	shmring__close(&ring);
	return out;
}

static struct recs *run(char *const argv[], bool with_ring)
{
	return run_ring(argv, with_ring, true);
}

static const struct rec_hdr *hdr(const struct recs *r, size_t i)
{
	return (const struct rec_hdr *)r->v[i];
}

/* The one REC_ALLOC of fn and size, or NULL. */
static const struct rec_alloc *find_alloc(const struct recs *r, uint32_t pid,
					  uint32_t fn, uint64_t size)
{
	const struct rec_alloc *found = NULL;
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct rec_alloc *a = (const void *)r->v[i];

		if (a->hdr.type == REC_ALLOC && a->hdr.pid == pid &&
		    a->fn == fn && a->size == size) {
			cr_assert_null(found, "two allocs of %lu", size);
			found = a;
		}
	}
	return found;
}

static const struct rec_realloc *find_realloc(const struct recs *r,
					      uint32_t pid, uint64_t size)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct rec_realloc *a = (const void *)r->v[i];

		if (a->hdr.type == REC_REALLOC && a->hdr.pid == pid &&
		    a->size == size)
			return a;
	}
	return NULL;
}

static size_t frees_of(const struct recs *r, uint32_t pid, uint64_t addr)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		const struct rec_free *f = (const void *)r->v[i];

		n += f->hdr.type == REC_FREE && f->hdr.pid == pid &&
		     f->addr == addr;
	}
	return n;
}

/* Any pid in the records other than these; 0 when none. */
static uint32_t pid_of_allocs(const struct recs *r, size_t nth)
{
	uint32_t seen[8] = { 0 };
	size_t i, n = 0, k;

	for (i = 0; i < r->n; i++) {
		const struct rec_alloc *a = (const void *)r->v[i];

		if (a->hdr.type != REC_ALLOC || a->size != 1000 ||
		    a->fn != FN_MALLOC)
			continue;
		for (k = 0; k < n && seen[k] != a->hdr.pid; k++)
			;
		if (k == n && n < 8)
			seen[n++] = a->hdr.pid;
	}
	return nth < n ? seen[nth] : 0;
}

/* tests/progs/allocs.c, call by call: sizes, frees, the partial munmap. */
static void check_allocs(const struct recs *r, uint32_t pid)
{
	static const struct {
		uint32_t fn;
		uint64_t size;
	} want[] = {
		{ FN_MALLOC, 1000 },	     { FN_CALLOC, 2000 },
		{ FN_MALLOC, 100 },	     { FN_MEMALIGN, 4096 },
		{ FN_POSIX_MEMALIGN, 5000 }, { FN_ALIGNED_ALLOC, 6000 },
		{ FN_VALLOC, 7000 },	     { FN_PVALLOC, 8192 },
	};
	const struct rec_realloc *re = find_realloc(r, pid, 3000);
	const struct rec_realloc *ra = find_realloc(r, pid, 1500);
	const struct rec_alloc *a;
	size_t i, j;

	for (i = 0; i < sizeof(want) / sizeof(*want); i++) {
		a = find_alloc(r, pid, want[i].fn, want[i].size);
		cr_assert_not_null(a, "no alloc fn %u size %lu", want[i].fn,
				   want[i].size);
		cr_assert_neq(a->site, 0);
		cr_assert_eq(a->tid, pid); /* the main thread */
		/* every kept block is freed once (the 100 B one by realloc) */
		if (want[i].size != 100)
			cr_assert_eq(frees_of(r, pid, a->addr), 1);
	}
	cr_assert_not_null(re);
	cr_assert_eq(re->fn, FN_REALLOC);
	cr_assert_eq(re->old_addr, find_alloc(r, pid, FN_MALLOC, 100)->addr);
	cr_assert_eq(frees_of(r, pid, re->new_addr), 1);
	cr_assert_not_null(ra);
	cr_assert_eq(ra->fn, FN_REALLOCARRAY);
	cr_assert_eq(ra->old_addr, 0);
	cr_assert_eq(frees_of(r, pid, ra->new_addr), 1);
	/* the failed malloc((size_t)1 << 62) is no record */
	cr_assert_null(find_alloc(r, pid, FN_MALLOC, (uint64_t)1 << 62));
	/* mmap 64 KiB, then munmap of its second half */
	for (i = 0; i < r->n; i++) {
		const struct rec_mmap *m = (const void *)r->v[i];

		if (hdr(r, i)->type != REC_MMAP || hdr(r, i)->pid != pid ||
		    m->len != 65536)
			continue;
		for (j = i + 1; j < r->n; j++) {
			const struct rec_munmap *u = (const void *)r->v[j];

			if (hdr(r, j)->type == REC_MUNMAP && u->len == 32768)
				break;
		}
		cr_assert_lt(j, r->n, "no munmap of 32 KiB");
		cr_assert_eq(((const struct rec_munmap *)r->v[j])->addr,
			     m->addr + 32768);
		return;
	}
	cr_assert_fail("no mmap of 64 KiB");
}

Test(recorder, allocs_call_by_call)
{
	char *argv[] = { "build/progs/allocs", NULL };
	struct recs *r = run(argv, true);
	uint32_t pid = pid_of_allocs(r, 0);

	cr_assert_neq(pid, 0);
	check_allocs(r, pid);
	free_recs(r);
}

/* A free is recorded before the block goes: the same order as the calls. */
Test(recorder, free_before_its_reuse)
{
	char *argv[] = { "build/progs/allocs", NULL };
	struct recs *r = run(argv, true);
	size_t i, j;

	for (i = 0; i < r->n; i++) {
		const struct rec_free *f = (const void *)r->v[i];

		if (hdr(r, i)->type != REC_FREE)
			continue;
		for (j = i + 1; j < r->n; j++) { /* a later alloc at it... */
			const struct rec_alloc *a = (const void *)r->v[j];

			if (hdr(r, j)->type == REC_ALLOC && a->addr == f->addr)
				break;
		}
		if (j == r->n)
			continue;
		for (; i < j;
		     i++) /* ...is not preceded by another free of it */
			cr_assert(
				hdr(r, i + 1)->type != REC_FREE ||
				((const struct rec_free *)r->v[i + 1])->addr !=
					f->addr);
	}
	free_recs(r);
}

/* Without a ring every call passes through: the program runs as ever. */
Test(recorder, no_ring_no_records)
{
	char *argv[] = { "build/progs/allocs", NULL };
	struct recs *r = run(argv, false);

	cr_assert_eq(r->n, 0);
	free_recs(r);
}

/* Four threads, 100 blocks each of (i + 1) * 1000 bytes, from their tids. */
Test(recorder, threads)
{
	char *argv[] = { "build/progs/threads", NULL };
	struct recs *r = run(argv, true);
	size_t i, per_size[5] = { 0 };
	uint32_t tids[5] = { 0 };

	for (i = 0; i < r->n; i++) {
		const struct rec_alloc *a = (const void *)r->v[i];
		uint64_t k = a->size / 1000;

		if (a->hdr.type != REC_ALLOC || a->size % 1000 || k < 1 ||
		    k > 4)
			continue;
		per_size[k]++;
		if (!tids[k])
			tids[k] = a->tid;
		cr_assert_eq(a->tid, tids[k], "one thread per size");
		cr_assert_neq(a->tid, a->hdr.pid, "not the main thread");
	}
	for (i = 1; i <= 4; i++)
		cr_assert_eq(per_size[i], 100, "%zu000 B: %zu", i, per_size[i]);
	free_recs(r);
}

/* A shell forks and execs allocs twice: two pids, each whole. */
Test(recorder, fork_and_exec)
{
	char *argv[] = { "/bin/sh", "-c",
			 "build/progs/allocs && build/progs/allocs", NULL };
	struct recs *r = run(argv, true);
	uint32_t a = pid_of_allocs(r, 0), b = pid_of_allocs(r, 1);

	cr_assert(a && b && a != b);
	check_allocs(r, a);
	check_allocs(r, b);
	free_recs(r);
}

/* Python: a bytearray's buffer is one malloc of n + 1 (3.11). */
Test(recorder, python)
{
	char *argv[] = { "/usr/bin/python3.11", "-c",
			 "x = bytearray(5_000_000)", NULL };
	struct recs *r = run(argv, true);
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		const struct rec_alloc *a = (const void *)r->v[i];

		n += a->hdr.type == REC_ALLOC && a->size == 5000001;
	}
	cr_assert_eq(n, 1);
	cr_assert_gt(r->n, 1000); /* the interpreter's own start */
	free_recs(r);
}

/*
 * A ring nobody reads (an agent gone, or a kernel's ring not adopted):
 * the program runs as ever and nothing is written, not even counted.
 */
Test(recorder, no_consumer_no_records)
{
	char *argv[] = { "build/progs/allocs", NULL };
	struct recs *r = run_ring(argv, true, false);

	cr_assert_eq(r->n, 0);
	free_recs(r);
}
