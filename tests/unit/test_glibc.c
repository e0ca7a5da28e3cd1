// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "census/glibc.h"
#include "unit.h"

/*
 * The child is this binary again (exec'd, so its heap is its own, not a
 * copy of Criterion's), running child_main from a constructor when
 * CHILD_ENV is set: "UPFD DOWNFD MODE". It writes to UPFD and waits for
 * EOF on DOWNFD. MODE "pattern": a known heap; "scribble": a corrupted
 * main arena.
 */
#define CHILD_ENV "MEMPROF_TEST_GLIBC_CHILD"
#define MAXP 4096
#define THREADS 2

/* What the child reports: live (pointer, usable size), freed pointers. */
struct report {
	uint64_t nlive, nfreed;
	uint64_t live[MAXP][2];
	uint64_t freed[MAXP];
};

/* Static, so the child's bookkeeping is not itself on its heap. */
static struct report rep;
static pthread_mutex_t rep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t threads_done;
static void *(*volatile do_malloc)(size_t) = malloc; /* real calls */
static void (*volatile do_free)(void *) = free;

static void keep(void *p)
{
	pthread_mutex_lock(&rep_lock);
	rep.live[rep.nlive][0] = (uint64_t)(uintptr_t)p;
	rep.live[rep.nlive][1] = malloc_usable_size(p);
	rep.nlive++;
	pthread_mutex_unlock(&rep_lock);
}

static void *alloc(size_t n)
{
	void *p = do_malloc(n);

	memset(p, 0x5a, n);
	keep(p);
	return p;
}

/* Free p (which alloc kept): it moves from live to freed. */
static void drop(void *p)
{
	uint64_t a = (uint64_t)(uintptr_t)p, i;

	pthread_mutex_lock(&rep_lock);
	for (i = 0; i < rep.nlive; i++)
		if (rep.live[i][0] == a) {
			memcpy(rep.live[i], rep.live[--rep.nlive],
			       sizeof(rep.live[i]));
			break;
		}
	rep.freed[rep.nfreed++] = a;
	pthread_mutex_unlock(&rep_lock);
	do_free(p);
}

/*
 * Per thread: sizes 100 and 50 (chunks 0x70, 0x40), then 3 of 0x70 into
 * tcache and 10 of 0x40 (7 tcache, 3 fastbin).
 */
static void *thread_pattern(void *arg)
{
	void *a[100], *b[40];
	int i;

	for (i = 0; i < 100; i++)
		a[i] = alloc(100);
	for (i = 0; i < 40; i++)
		b[i] = alloc(50);
	for (i = 0; i < 3; i++)
		drop(a[10 * i]);
	for (i = 0; i < 10; i++)
		drop(b[3 * i]);
	pthread_barrier_wait(&threads_done);
	pause();
	return arg;
}

/*
 * Main arena: 8 sizes, then 5 chunks of 0x20 into tcache, 12 of 0x30 (7
 * tcache, 5 fastbin), 10 of 0x3f0 (7 tcache, 3 bins), 10 of 0xbc0 and of
 * 0x4e30 into the bins (coalesced). Mmapped: 3 x 1 MiB, an untouched calloc(64 MiB), two memaligns, a
 * 2 MiB chunk freed (unmapped).
 */
static void main_pattern(void)
{
	static const size_t sizes[] = { 24, 40, 100, 200, 1000, 3000, 20000, 5 };
	void *v[8][40], *p;
	size_t s;
	int i;

	for (i = 0; i < 40; i++)
		for (s = 0; s < 8; s++)
			v[s][i] = alloc(sizes[s]);
	/* Mmapped first: a large request consolidates the fastbins. */
	for (i = 0; i < 3; i++)
		alloc(1 << 20);
	keep(calloc(1, 64 << 20));
	if (posix_memalign(&p, 4096, 500000))
		_exit(4);
	keep(p);
	if (posix_memalign(&p, 65536, 700000))
		_exit(4);
	keep(p);
	drop(alloc(2 << 20));
	for (i = 0; i < 5; i++)
		drop(v[0][2 * i]);
	for (i = 0; i < 12; i++)
		drop(v[1][3 * i]);
	for (i = 0; i < 40; i += 4) {
		drop(v[4][i]);
		drop(v[5][i]);
		drop(v[6][i]);
	}
}

/* Corrupt a main-arena chunk's size field between a thread's arena and
 * mmapped chunks; report only those two kinds. */
static void scribble_pattern(void)
{
	static void *v[200];
	int i;

	for (i = 0; i < 200; i++)
		v[i] = do_malloc(200);
	*(volatile uint64_t *)((char *)v[100] - 8) = 0x4141414141414141ULL;
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			_exit(3);
		p += w;
		n -= (size_t)w;
	}
}

/* The exec'd child: build the heap, report it, wait. */
static void child_main(int up, int down, const char *mode)
{
	pthread_t t[THREADS];
	char c;
	int i;

	write_all(up, "B", 1); /* baseline: the heap before the pattern */
	if (read(down, &c, 1) != 1)
		_exit(2);
	pthread_barrier_init(&threads_done, NULL, THREADS + 1);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, thread_pattern, NULL);
	pthread_barrier_wait(&threads_done);
	if (strcmp(mode, "scribble") == 0) {
		for (i = 0; i < 2; i++)
			alloc(1 << 20);
		scribble_pattern();
	} else {
		main_pattern();
	}
	write_all(up, &rep, sizeof(rep));
	while (read(down, &c, 1) > 0)
		;
	_exit(0);
}

__attribute__((constructor)) static void maybe_child(void)
{
	const char *env = getenv(CHILD_ENV);
	char mode[16];
	int up, down;

	if (env && sscanf(env, "%d %d %15s", &up, &down, mode) == 3)
		child_main(up, down, mode);
}

/* ---- the parent ------------------------------------------------------ */

struct child {
	pid_t pid;
	int up, down;
};

static void read_all(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		cr_assert_gt(r, 0, "child report cut short");
		p += r;
		n -= (size_t)r;
	}
}

/* Exec this binary as the child; returns at its baseline point. */
static void start_child(struct child *ch, const char *mode)
{
	int up[2], down[2];
	char env[64], c;

	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(down), 0);
	ch->pid = fork();
	cr_assert_geq(ch->pid, 0);
	if (ch->pid == 0) {
		close(up[0]);
		close(down[1]);
		snprintf(env, sizeof(env), "%d %d %s", up[1], down[0], mode);
		setenv(CHILD_ENV, env, 1);
		execl("/proc/self/exe", "test_glibc_child", (char *)NULL);
		_exit(127);
	}
	close(up[1]);
	close(down[0]);
	ch->up = up[0];
	ch->down = down[1];
	read_all(ch->up, &c, 1);
	cr_assert_eq(c, 'B');
}

/* Let the child build its heap; its report into r. */
static void child_build(struct child *ch, struct report *r)
{
	cr_assert_eq(write(ch->down, "g", 1), 1);
	read_all(ch->up, r, sizeof(*r));
}

static void end_child(struct child *ch)
{
	close(ch->down);
	close(ch->up);
	kill(ch->pid, SIGKILL);
	waitpid(ch->pid, NULL, 0);
}

/* The census of pid, which must succeed. */
static void take(pid_t pid, struct census *c)
{
	struct vmem m;

	memset(c, 0, sizeof(*c));
	cr_assert_eq(vmem__open(&m, pid), 0);
	cr_assert_eq(glibc__census(&m, c), 0);
	vmem__close(&m);
}

/* The census block at addr, or NULL. */
static const struct census_block *find(const struct census *c, uint64_t a)
{
	size_t i;

	for (i = 0; i < c->nblocks; i++)
		if (c->blocks[i].addr == a)
			return &c->blocks[i];
	return NULL;
}

enum own { NOT_OWN, OWN_TCACHE, OWN_DTV };

/* Is a block libc's own: a thread's tcache struct or DTV (memo 2.4)? */
static enum own libc_own(pid_t pid, const struct census_block *b)
{
	uint64_t size = census_block__size(b), n;
	struct vmem m;
	int err;

	if (size == 0x290 - 8)
		return OWN_TCACHE; /* tcache_perthread_struct, 2.34-2.41 */
	cr_assert_eq(vmem__open(&m, pid), 0);
	err = vmem__word(&m, b->addr, &n);
	vmem__close(&m);
	/* A DTV: calloc((n + 2) * 16) with the length n in its first word. */
	if (!err && n > 0 && n < 4096 && (n + 2) * 16 <= size &&
	    size < (n + 2) * 16 + 32)
		return OWN_DTV;
	return NOT_OWN;
}

Test(glibc, census_is_exactly_the_live_blocks, .timeout = 10)
{
	static struct report r;
	struct census base, c;
	struct child ch;
	size_t i, extra = 0, own[3] = { 0 };
	uint64_t k;

	start_child(&ch, "pattern");
	take(ch.pid, &base);
	child_build(&ch, &r);
	take(ch.pid, &c);
	cr_assert_str_eq(c.glibc, "2.36");
	cr_assert_str_eq(c.warning, "", "%s", c.warning);
	cr_assert_eq(c.unwalked_bytes, 0);
	/* Every live block, with its usable size. */
	for (k = 0; k < r.nlive; k++) {
		const struct census_block *b = find(&c, r.live[k][0]);

		cr_assert_not_null(b, "live block 0x%llx (%llu B) not found",
				   (unsigned long long)r.live[k][0],
				   (unsigned long long)r.live[k][1]);
		cr_assert_eq(census_block__size(b), r.live[k][1],
			     "block 0x%llx: %llu B, want %llu",
			     (unsigned long long)r.live[k][0],
			     (unsigned long long)census_block__size(b),
			     (unsigned long long)r.live[k][1]);
		cr_assert_eq(census_block__kind(b), r.live[k][1] >= (128 << 10)
							    ? CENSUS_MMAPPED
							    : CENSUS_HEAP);
	}
	/* None of the freed ones (5 + 12 + 30 main, 13 per thread). */
	cr_assert_eq(r.nfreed, 5 + 12 + 30 + 1 + THREADS * 13);
	for (k = 0; k < r.nfreed; k++)
		cr_assert_null(find(&c, r.freed[k]), "freed 0x%llx counted",
			       (unsigned long long)r.freed[k]);
	/* The rest: there before the pattern, or libc's own. */
	for (i = 0; i < c.nblocks; i++) {
		bool known = false;

		for (k = 0; k < r.nlive && !known; k++)
			known = r.live[k][0] == c.blocks[i].addr;
		if (known)
			continue;
		extra++;
		if (find(&base, c.blocks[i].addr))
			continue;
		own[libc_own(ch.pid, &c.blocks[i])]++;
		cr_assert_eq(
			own[NOT_OWN], 0, "extra block 0x%llx, %llu B",
			(unsigned long long)c.blocks[i].addr,
			(unsigned long long)census_block__size(&c.blocks[i]));
	}
	/* Each thread's tcache struct (the main one's too), a DTV each. */
	cr_assert_eq(own[OWN_TCACHE], THREADS + 1);
	cr_assert_eq(own[OWN_DTV], THREADS);
	cr_assert_eq(c.nblocks, r.nlive + extra);
	cr_assert_eq(c.count[CENSUS_MMAPPED] - base.count[CENSUS_MMAPPED],
		     3 + 1 + 2);
	/* tcache: 5 + 7 + 7 main, 3 + 7 per thread; fastbins: 5, 3 per
	 * thread (plus what the baseline held). */
	cr_assert_eq(c.tcache_skipped - base.tcache_skipped, 19 + THREADS * 10);
	cr_assert_eq(c.fastbin_skipped - base.fastbin_skipped, 5 + THREADS * 3);
	cr_assert_gt(c.read_calls, 0);
	end_child(&ch);
	census__free(&base);
	census__free(&c);
}

Test(glibc, corrupted_heap_is_warned_and_the_rest_counted, .timeout = 10)
{
	static struct report r;
	struct census c;
	struct child ch;
	uint64_t k;

	start_child(&ch, "scribble");
	child_build(&ch, &r);
	take(ch.pid, &c);
	cr_assert(strstr(c.warning, "census incomplete: arena") != NULL, "%s",
		  c.warning);
	cr_assert(strstr(c.warning, "0x4141414141414141") != NULL);
	cr_assert_gt(c.unwalked_bytes, 0);
	cr_assert_lt(c.unwalked_bytes, 64 << 20);
	/* The threads' arenas and the mmapped chunks are all there. */
	cr_assert_eq(r.nlive, THREADS * (100 + 40 - 13) + 2);
	for (k = 0; k < r.nlive; k++) {
		const struct census_block *b = find(&c, r.live[k][0]);

		cr_assert_not_null(b, "0x%llx not found",
				   (unsigned long long)r.live[k][0]);
		cr_assert_eq(census_block__size(b), r.live[k][1]);
	}
	cr_assert_eq(c.count[CENSUS_MMAPPED], 2);
	/* Nothing absurd: the main arena gave at most its 200 blocks. */
	cr_assert_lt(c.count[CENSUS_HEAP], r.nlive + 200 + 64);
	cr_assert_lt(c.bytes[CENSUS_HEAP], 1 << 20);
	end_child(&ch);
	census__free(&c);
}

Test(glibc, gone_is_esrch, .timeout = 10)
{
	struct census c;
	struct child ch;
	struct vmem m;

	memset(&c, 0, sizeof(c));
	start_child(&ch, "pattern");
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	end_child(&ch);
	cr_assert_eq(glibc__census(&m, &c), -ESRCH);
	vmem__close(&m);
	census__free(&c);
}
