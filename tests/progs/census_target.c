// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For the census at attach (issue 14): a known glibc heap built before
 * the agent comes, and known changes to it afterwards.
 *
 *   census_target TRUTH1 TRUTH2
 *
 * Before attach: main-arena blocks of several sizes; three threads, each
 * on an arena of its own (parked, alive); mmapped blocks (1 MiB, 300 KB per
 * thread, an untouched calloc(64 MiB), posix_memalign(4096, 500000)); an
 * in-arena posix_memalign(64) and aligned_alloc(256); and about 1 MB per
 * thread freed again into tcache, fastbins (2.36), the unsorted and small
 * bins, and a coalesced run, all fenced by live guards so that nothing
 * merges with top or consolidates the fastbins. A 2 MiB mmapped block is
 * freed (munmapped) last. TRUTH1 gets the totals, then says "ready" on
 * stdout and waits for a line on stdin.
 *
 * After "go": frees half of the main thread's pattern blocks, one 1 MiB
 * block and all of thread 1's blocks; reallocs one old block; allocates
 * new ones of known sizes (more than it freed, so the peak is the end).
 * TRUTH2 gets the totals, "done" on stdout, then a line on stdin exits.
 *
 * The truth files hold "key value" lines, then one "L addr usable kind"
 * line per live block (kind h: in an arena, m: mmapped) and one "F addr"
 * line per block freed before attach. They are written with write(2) from
 * a static buffer: nothing in the heap changes while writing them. Old
 * blocks are counted at malloc_usable_size (what a census can know), new
 * ones at the size asked for (what the agent's probes see).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#define MAXP 24000
#define NTHREADS 3
#define KEEP 600
#define CLASSES 64 /* tcache's bins: chunks of 0x20 .. 0x410 */
#define PER_CLASS 16 /* 7 (2.36) or 16 (2.43) in tcache, the rest in bins */
#define FAST_EXTRA 1000 /* 0x80 chunks past a full tcache: fastbins */
#define UNSORTED 100 /* 2000 B: unsorted, then small bins */

struct block {
	void *p;
	char kind; /* 'h' in an arena, 'm' mmapped on its own */
	char owner; /* 0 main thread, 1..3 a thread */
};

static struct block live[MAXP];
static int nlive;
static void *freed[MAXP];
static int nfreed;
static uint64_t freed_usable; /* usable bytes of blocks freed before attach */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Called through volatile pointers: gcc pairs no malloc with a free. */
static void *(*volatile mal)(size_t) = malloc;
static void (*volatile fre)(void *) = free;

/*
 * Where glibc put it, from the chunk's IS_MMAPPED bit (not from the size
 * asked: 2.43 serves a new arena's first large request from its heap).
 */
static char kind_of(void *p)
{
	return ((size_t *)p)[-1] & 2 ? 'm' : 'h';
}

static void *add(void *p, int owner)
{
	pthread_mutex_lock(&mu);
	if (nlive < MAXP) {
		live[nlive].p = p;
		live[nlive].kind = kind_of(p);
		live[nlive].owner = (char)owner;
		nlive++;
	}
	pthread_mutex_unlock(&mu);
	return p;
}

static void *alloc(size_t n, int owner)
{
	void *p = mal(n);

	if (!p)
		abort();
	memset(p, 0x41, n);
	return add(p, owner);
}

/* Forget a live block (it is about to be freed or reallocated). */
static void drop(void *p)
{
	int i;

	pthread_mutex_lock(&mu);
	for (i = nlive - 1; i >= 0; i--)
		if (live[i].p == p) {
			live[i] = live[--nlive];
			break;
		}
	pthread_mutex_unlock(&mu);
}

/* Free before attach: out of the live list, into the freed one. */
static void free_early(void *p)
{
	drop(p);
	pthread_mutex_lock(&mu);
	if (nfreed < MAXP)
		freed[nfreed++] = p;
	freed_usable += malloc_usable_size(p);
	pthread_mutex_unlock(&mu);
	fre(p);
}

static void *small[CLASSES * PER_CLASS], *fast[NTHREADS + 1][FAST_EXTRA];

/*
 * One thread's pattern in its arena. Every allocation comes first: a
 * later request of the large-bin range would consolidate the fastbins,
 * and frees stay apart (a live guard after each) so that no free chunk
 * reaches 64 KiB (which consolidates too) or merges with top.
 */
static void pattern(int owner)
{
	static const size_t sz[] = { 24, 40, 100, 200, 1000, 3000, 20000, 5 };
	void *keep[KEEP], *big[UNSORTED], *run[3], **sm, **fa = fast[owner];
	void *m;
	int i;

	sm = owner ? mal(sizeof(small)) : small; /* a thread's own copy */
	if (owner)
		add(sm, owner);
	for (i = 0; i < KEEP; i++)
		keep[i] = alloc(sz[i % 8] + (size_t)owner, owner);
	if (posix_memalign(&m, 64, 1000))
		abort();
	add(m, owner);
	add(aligned_alloc(256, 3000), owner);
	for (i = 0; i < UNSORTED; i++) {
		big[i] = alloc(2000, owner);
		alloc(24, owner);
	}
	for (i = 0; i < 3; i++) /* adjacent: they coalesce when freed */
		run[i] = alloc(5000, owner);
	alloc(24, owner);
	for (i = 0; i < CLASSES * PER_CLASS; i++) {
		sm[i] = alloc(24 + 16 * (size_t)(i / PER_CLASS), owner);
		alloc(24, owner);
	}
	for (i = 0; i < FAST_EXTRA; i++) {
		fa[i] = alloc(120, owner); /* chunk 0x80 */
		alloc(24, owner);
	}

	/* Frees, large first. */
	for (i = 0; i < KEEP; i += 3)
		free_early(keep[i]);
	for (i = 0; i < UNSORTED; i++)
		free_early(big[i]);
	for (i = 0; i < 3; i++)
		free_early(run[i]);
	for (i = 0; i < CLASSES * PER_CLASS; i++)
		free_early(sm[i]);
	for (i = 0; i < FAST_EXTRA; i++)
		free_early(fa[i]);
}

static pthread_barrier_t bar;

static void *thread_main(void *arg)
{
	int owner = (int)(intptr_t)arg;

	add(mal(300000 + 4096 * (size_t)owner), owner); /* mmapped (2.36) */
	pattern(owner);
	pthread_barrier_wait(&bar);
	for (;;)
		pause();
	return NULL;
}

/* ---- output without the heap ---------------------------------------- */

static char out[1 << 16];
static size_t outn;
static int outfd;

static void flush(void)
{
	size_t o = 0;
	ssize_t w;

	while (o < outn) {
		w = write(outfd, out + o, outn - o);
		if (w <= 0)
			abort();
		o += (size_t)w;
	}
	outn = 0;
}

static void put(const char *s)
{
	size_t n = strlen(s);

	if (outn + n > sizeof(out))
		flush();
	memcpy(out + outn, s, n);
	outn += n;
}

static void put_num(uint64_t v, unsigned base)
{
	char d[24];
	int i = (int)sizeof(d) - 1;

	d[i] = 0;
	do {
		d[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	put(d + i);
}

static void put_kv(const char *key, uint64_t v)
{
	put(key);
	put(" ");
	put_num(v, 10);
	put("\n");
}

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		abort();
}

static void wait_line(void)
{
	char c;

	do {
		if (read(0, &c, 1) != 1)
			exit(0);
	} while (c != '\n');
}

struct totals {
	uint64_t heap, mmapped, n;
};

static struct totals old_totals(void)
{
	struct totals t = { 0, 0, 0 };
	int i;

	for (i = 0; i < nlive; i++) {
		uint64_t u = malloc_usable_size(live[i].p);

		if (live[i].kind == 'm')
			t.mmapped += u;
		else
			t.heap += u;
		t.n++;
	}
	return t;
}

static void write_blocks(void)
{
	int i;

	for (i = 0; i < nlive; i++) {
		put("L ");
		put_num((uintptr_t)live[i].p, 16);
		put(" ");
		put_num(malloc_usable_size(live[i].p), 10);
		put(live[i].kind == 'm' ? " m\n" : " h\n");
	}
	for (i = 0; i < nfreed; i++) {
		put("F ");
		put_num((uintptr_t)freed[i], 16);
		put("\n");
	}
}

static void open_out(const char *path)
{
	outfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (outfd < 0)
		abort();
	outn = 0;
}

static void close_out(void)
{
	flush();
	close(outfd);
}

/* ---- after attach ---------------------------------------------------- */

#define NEW_BIG 2
#define NEW_MID 20
#define NEW_SMALL 1000
#define REALLOC_TO 50000

static uint64_t new_bytes, new_count, old_freed;

__attribute__((noinline)) static void *after_attach(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	memset(p, 0x42, n);
	new_bytes += n;
	new_count++;
	return p;
}

static void free_old(void *p)
{
	old_freed += malloc_usable_size(p);
	drop(p);
	free(p);
}

static void phase2(void *mmapped1)
{
	void *v[MAXP], *r = NULL;
	int i, n = 0, half = 0;

	/* Half of the main thread's arena blocks, then one 1 MiB block. */
	for (i = 0; i < nlive; i++)
		if (live[i].owner == 0 && live[i].kind == 'h' && (half++ & 1))
			v[n++] = live[i].p;
	for (i = 0; i < n; i++)
		free_old(v[i]);
	free_old(mmapped1);
	/* All of thread 1's blocks (its arena's and its mmapped one). */
	n = 0;
	for (i = 0; i < nlive; i++)
		if (live[i].owner == 1)
			v[n++] = live[i].p;
	for (i = 0; i < n; i++)
		free_old(v[i]);
	/* realloc of an old block: its old size out, the new one in. */
	for (i = 0; i < nlive && !r; i++)
		if (live[i].owner == 0 && live[i].kind == 'h' &&
		    malloc_usable_size(live[i].p) >= 3000 &&
		    malloc_usable_size(live[i].p) < 20000)
			r = live[i].p;
	old_freed += malloc_usable_size(r);
	drop(r);
	r = realloc(r, REALLOC_TO);
	if (!r)
		abort();
	new_bytes += REALLOC_TO;
	new_count++;
	/* New blocks: more than was freed, so the peak is now. */
	for (i = 0; i < NEW_BIG; i++)
		after_attach(4 << 20);
	for (i = 0; i < NEW_MID; i++)
		after_attach(100000);
	for (i = 0; i < NEW_SMALL; i++)
		after_attach(1000);
}

int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];
	struct totals a, b;
	void *m, *mm1 = NULL, *gone;
	int i;

	if (argc < 3) {
		say("usage: census_target TRUTH1 TRUTH2\n");
		return 2;
	}
	/* Mmapped blocks first: large requests would consolidate fastbins. */
	if (posix_memalign(&m, 4096, 500000))
		abort();
	add(m, 0);
	for (i = 0; i < 4; i++) {
		m = alloc(1 << 20, 0);
		if (!mm1)
			mm1 = m;
	}
	add(calloc(1, 64 << 20), 0); /* untouched pages */
	gone = add(mal(2 << 20), 0);
	pattern(0);
	pthread_barrier_init(&bar, NULL, NTHREADS + 1);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, thread_main,
			       (void *)(intptr_t)(i + 1));
	pthread_barrier_wait(&bar);
	/* Munmapped: not in the heap at all. Allocated before the pattern
	 * (asking for it would consolidate the fastbins), freed after every
	 * other allocation (freeing it raises glibc's mmap threshold). */
	free_early(gone);

	a = old_totals();
	open_out(argv[1]);
	put_kv("pid", (uint64_t)getpid());
	put_kv("blocks", a.n);
	put_kv("usable", a.heap + a.mmapped);
	put_kv("heap", a.heap);
	put_kv("mmapped", a.mmapped);
	put_kv("freed_blocks", (uint64_t)nfreed);
	put_kv("freed_usable", freed_usable);
	write_blocks();
	close_out();
	say("ready\n");
	wait_line();

	phase2(mm1);
	b = old_totals();
	open_out(argv[2]);
	put_kv("old_usable", b.heap + b.mmapped);
	put_kv("old_heap", b.heap);
	put_kv("old_mmapped", b.mmapped);
	put_kv("old_freed", old_freed);
	put_kv("new_bytes", new_bytes);
	put_kv("new_count", new_count);
	put_kv("live", b.heap + b.mmapped + new_bytes);
	close_out();
	say("done\n");
	wait_line();
	return 0;
}
