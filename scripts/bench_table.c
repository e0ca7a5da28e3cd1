// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent's live-block table (user/lib/u64map.c: open addressing, 24-byte
 * slots) against Debian's uthash (uthash-dev, header only: chained buckets,
 * one caller-owned struct per entry) on the agent's hot path: address ->
 * (size, site) under a malloc-like stream of addresses.
 *
 * Standalone on purpose: uthash is no dependency of the project. Built and
 * run by scripts/bench-table, which writes docs/bench/10-table.md:
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -Iuser scripts/bench_table.c \
 *      user/lib/u64map.c -o build/bench_table
 *
 * Workloads: fill (N puts into an empty table, growth included), lookups
 * that hit and miss at N and at W live blocks, and churn (W live blocks;
 * each step frees a random live block and allocates a new one: one take
 * and one put). Every address stream is generated before the clock starts,
 * so the timed loops do table operations only. Each table ends up checked
 * against the generator's own record of what is live (a checksum).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/u64map.h"

/*
 * uthash hashes keys with Jenkins' hash unless told otherwise; one variant
 * swaps in the same multiplicative hash as u64map, to tell the hash's cost
 * from the structure's. The flag is fixed while a table lives.
 */
static bool uth_fib_hash;

#define FIB_MUL 0x9E3779B97F4A7C15ULL
#define HASH_FUNCTION(keyptr, keylen, hashv)                        \
	do {                                                        \
		if (uth_fib_hash) {                                 \
			uint64_t k_;                                \
			memcpy(&k_, (keyptr), sizeof(k_));          \
			(hashv) = (unsigned)((k_ * FIB_MUL) >> 32); \
		} else {                                            \
			HASH_JEN((keyptr), (keylen), (hashv));      \
		}                                                   \
	} while (0)
#include <uthash.h>

#define N_FILL 1000000
#define W_LIVE 100000
#define CHURN_STEPS 5000000
#define LOOKUPS 1000000
#define RUNS 5
#define ARENAS 4
#define FREED_MAX 4096

/* ---- the address stream: a malloc-like heap, simulated -------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t z)
{
	return splitmix(&z);
}

/*
 * A few arenas (the main heap near the program, thread arenas in the mmap
 * area), each a bump pointer plus a list of freed chunks that later
 * mallocs reuse at random: addresses are 16-byte aligned, clustered and
 * mostly increasing, with reuse once blocks are freed.
 */
struct heap {
	uint64_t rng;
	uint64_t base[ARENAS];
	uint64_t top[ARENAS];
	uint64_t freed[ARENAS][FREED_MAX];
	unsigned nfreed[ARENAS];
};

static void heap_init(struct heap *h, uint64_t seed, uint64_t shift)
{
	int i;

	memset(h, 0, sizeof(*h));
	h->rng = seed;
	h->base[0] = 0x55a4c0000000ULL - shift;
	for (i = 1; i < ARENAS; i++)
		h->base[i] = 0x7f2a00000000ULL + ((uint64_t)i << 32) - shift;
	for (i = 0; i < ARENAS; i++)
		h->top[i] = h->base[i];
}

/* Most allocations come from the main thread's arena. */
static int heap_pick_arena(struct heap *h)
{
	uint64_t r = splitmix(&h->rng) % 10;

	return r < 7 ? 0 : 1 + (int)(r % (ARENAS - 1));
}

static uint64_t heap_malloc(struct heap *h)
{
	int a = heap_pick_arena(h);
	uint64_t r = splitmix(&h->rng), addr, size;

	if (h->nfreed[a] && (r & 1)) { /* reuse a freed chunk */
		unsigned i = (unsigned)((r >> 1) % h->nfreed[a]);

		addr = h->freed[a][i];
		h->freed[a][i] = h->freed[a][--h->nfreed[a]];
		return addr;
	}
	/* Mostly small blocks, some up to 4 KiB; a 16-byte chunk header. */
	size = (r >> 8) % 8 ? 16 * (1 + (r >> 16) % 16)
			    : 16 * (1 + (r >> 16) % 256);
	addr = h->top[a] + 16;
	h->top[a] += 16 + size;
	return addr;
}

static void heap_free(struct heap *h, uint64_t addr)
{
	int a = ARENAS - 1;

	while (a > 0 && addr < h->base[a])
		a--;
	if (h->nfreed[a] < FREED_MAX) /* else merged into the top: not reused */
		h->freed[a][h->nfreed[a]++] = addr;
}

/* The size and site of the k-th block allocated: cheap, the same for all. */
static inline uint64_t size_of(uint64_t k)
{
	return 16 * (1 + ((k * 2654435761u) >> 26 & 63));
}

static inline uint32_t site_of(uint64_t k)
{
	return (uint32_t)((k * 40503u) % 1021u) + 1;
}

/* Order-independent: the same entries in any table give the same sum. */
static uint64_t entry_sum(uint64_t addr, uint64_t size, uint32_t site)
{
	return mix64(addr ^ mix64(size << 32 | site));
}

static void shuffle(uint64_t *v, size_t n, uint64_t *rng)
{
	size_t i, j;
	uint64_t t;

	for (i = n - 1; i > 0; i--) {
		j = splitmix(rng) % (i + 1);
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

/* Everything the timed loops read, generated once. */
struct workload {
	uint64_t *fill; /* N distinct addresses, in allocation order */
	uint64_t *fill_hits; /* the same, shuffled: lookups, then takes */
	uint64_t kept; /* the fill's ordinal of fill_hits[N - 1], never taken */
	uint64_t *misses; /* addresses never allocated, same layout */
	uint64_t *start; /* W live blocks before the churn */
	uint64_t *gone,
		*born; /* churn step i frees gone[i], allocates born[i] */
	uint64_t *live_hits; /* lookups of blocks live after the churn */
	uint64_t fill_sum, churn_sum; /* what the tables must hold */
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "bench_table: out of memory\n");
		exit(1);
	}
	return p;
}

static void gen_fill(struct workload *w, struct heap *h)
{
	uint64_t k, rng = 7;

	w->fill = xcalloc(N_FILL, sizeof(*w->fill));
	w->fill_hits = xcalloc(N_FILL, sizeof(*w->fill_hits));
	w->misses = xcalloc(N_FILL, sizeof(*w->misses));
	heap_init(h, 1, 0);
	for (k = 0; k < N_FILL; k++) {
		w->fill[k] = heap_malloc(h);
		w->fill_sum += entry_sum(w->fill[k], size_of(k), site_of(k));
	}
	memcpy(w->fill_hits, w->fill, N_FILL * sizeof(*w->fill));
	shuffle(w->fill_hits, N_FILL, &rng);
	while (w->fill[w->kept] != w->fill_hits[N_FILL - 1])
		w->kept++;
	heap_init(h, 2, 1ULL << 31); /* 2 GiB below: the same shape, disjoint */
	for (k = 0; k < N_FILL; k++)
		w->misses[k] = heap_malloc(h);
}

/* Simulate the churn, recording each step and what is live at the end. */
static void gen_churn(struct workload *w, struct heap *h)
{
	uint64_t *addr = xcalloc(W_LIVE, sizeof(*addr)), rng = 11, k;
	uint64_t *ord = xcalloc(W_LIVE, sizeof(*ord));
	size_t i, r;

	w->start = xcalloc(W_LIVE, sizeof(*w->start));
	w->gone = xcalloc(CHURN_STEPS, sizeof(*w->gone));
	w->born = xcalloc(CHURN_STEPS, sizeof(*w->born));
	w->live_hits = xcalloc(LOOKUPS, sizeof(*w->live_hits));
	heap_init(h, 3, 0);
	for (i = 0; i < W_LIVE; i++) {
		w->start[i] = addr[i] = heap_malloc(h);
		ord[i] = i;
	}
	for (i = 0; i < CHURN_STEPS; i++) {
		r = splitmix(&rng) % W_LIVE;
		w->gone[i] = addr[r];
		heap_free(h, addr[r]);
		w->born[i] = addr[r] = heap_malloc(h);
		ord[r] = W_LIVE + i;
	}
	for (i = 0; i < W_LIVE; i++) {
		k = ord[i];
		w->churn_sum += entry_sum(addr[i], size_of(k), site_of(k));
	}
	for (i = 0; i < LOOKUPS; i++)
		w->live_hits[i] = addr[splitmix(&rng) % W_LIVE];
	free(addr);
	free(ord);
}

static void workload_free(struct workload *w)
{
	free(w->fill);
	free(w->fill_hits);
	free(w->misses);
	free(w->start);
	free(w->gone);
	free(w->born);
	free(w->live_hits);
}

/* ---- the tables behind one interface --------------------------------- */

struct table_ops {
	void (*put)(void *t, uint64_t addr, uint64_t size, uint32_t site);
	uint64_t (*take)(void *t, uint64_t addr); /* size + site, 0: absent */
	uint64_t (*get)(void *t, uint64_t addr); /* size, 0: absent */
	uint64_t (*sum)(void *t, size_t *len);
	size_t (*bytes)(void *t); /* memory the table holds */
	double (*probes)(void *t); /* entries a hit looks at, on average */
	void (*destroy)(void *t);
};

static void die_errno(const char *what, int err)
{
	fprintf(stderr, "bench_table: %s: %s\n", what, strerror(err));
	exit(1);
}

static void *um_create(void)
{
	struct u64map *t = xcalloc(1, sizeof(*t));
	int err = u64map__init(t);

	if (err)
		die_errno("u64map__init", -err);
	return t;
}

static void um_put(void *t, uint64_t addr, uint64_t size, uint32_t site)
{
	struct u64map_entry old;
	bool replaced;
	int err = u64map__put(t, addr, size, site, &old, &replaced);

	if (err)
		die_errno("u64map__put", -err);
}

static uint64_t um_take(void *t, uint64_t addr)
{
	struct u64map_entry e;

	return u64map__take(t, addr, &e) ? e.val + e.tag : 0;
}

static uint64_t um_get(void *t, uint64_t addr)
{
	const struct u64map_entry *e = u64map__get(t, addr);

	return e ? e->val : 0;
}

static uint64_t um_sum(void *tp, size_t *len)
{
	struct u64map *t = tp;
	struct u64map_entry *e;
	uint64_t s = 0;

	u64map__for_each(t, e) s += entry_sum(e->key, e->val, e->tag);
	*len = t->len;
	return s;
}

static size_t um_bytes(void *t)
{
	return u64map__bytes(t);
}

/* A hit looks at the slots from the key's home to its own. */
static double um_probes(void *tp)
{
	struct u64map *t = tp;
	struct u64map_entry *e;
	size_t home, n = 0;

	u64map__for_each(t, e)
	{
		home = (size_t)((e->key * FIB_MUL) >> t->shift);
		n += ((size_t)(e - t->slots) - home) & (t->cap - 1);
		n++;
	}
	return t->len ? (double)n / t->len : 0;
}

static void um_destroy(void *t)
{
	u64map__free(t);
	free(t);
}

static const struct table_ops u64map_ops = {
	um_put, um_take, um_get, um_sum, um_bytes, um_probes, um_destroy,
};

/*
 * uthash: one struct per live block, linked into a bucket chain and into
 * the table's insertion-order list. uthash allocates only its buckets, so
 * blocks come from a free-list pool (slabs of SLAB_BLOCKS, never returned
 * while the table lives) unless malloc_each asks for malloc/free per block.
 */
struct block {
	uint64_t addr;
	uint64_t size;
	uint32_t site;
	UT_hash_handle hh;
};

#define SLAB_BLOCKS 4096

struct uth {
	struct block *head;
	struct block *pool; /* free blocks, linked through hh.next */
	struct block **slabs;
	size_t nslabs;
	bool replace; /* put is HASH_REPLACE (u64map__put's semantics) */
	bool malloc_each;
};

static struct block *pool_grow(struct uth *t)
{
	struct block *slab = xcalloc(SLAB_BLOCKS, sizeof(*slab));
	size_t i;

	t->slabs = realloc(t->slabs, (t->nslabs + 1) * sizeof(*t->slabs));
	if (!t->slabs)
		die_errno("realloc", ENOMEM);
	t->slabs[t->nslabs++] = slab;
	for (i = 1; i < SLAB_BLOCKS; i++) {
		slab[i].hh.next = t->pool;
		t->pool = &slab[i];
	}
	return &slab[0];
}

static inline struct block *block_new(struct uth *t)
{
	struct block *b = t->pool;

	if (t->malloc_each) {
		b = malloc(sizeof(*b));
		if (!b)
			die_errno("malloc", ENOMEM);
		return b;
	}
	if (!b)
		return pool_grow(t);
	t->pool = b->hh.next;
	return b;
}

static inline void block_free(struct uth *t, struct block *b)
{
	if (t->malloc_each) {
		free(b);
		return;
	}
	b->hh.next = t->pool;
	t->pool = b;
}

static void uth_put(void *tp, uint64_t addr, uint64_t size, uint32_t site)
{
	struct uth *t = tp;
	struct block *b = block_new(t), *old;

	b->addr = addr;
	b->size = size;
	b->site = site;
	if (t->replace) {
		HASH_REPLACE(hh, t->head, addr, sizeof(b->addr), b, old);
		if (old)
			block_free(t, old);
	} else {
		HASH_ADD(hh, t->head, addr, sizeof(b->addr), b);
	}
}

static uint64_t uth_take(void *tp, uint64_t addr)
{
	struct uth *t = tp;
	struct block *b;
	uint64_t v;

	HASH_FIND(hh, t->head, &addr, sizeof(addr), b);
	if (!b)
		return 0;
	v = b->size + b->site;
	HASH_DEL(t->head, b);
	block_free(t, b);
	return v;
}

static uint64_t uth_get(void *tp, uint64_t addr)
{
	struct uth *t = tp;
	struct block *b;

	HASH_FIND(hh, t->head, &addr, sizeof(addr), b);
	return b ? b->size : 0;
}

static uint64_t uth_sum(void *tp, size_t *len)
{
	struct uth *t = tp;
	struct block *b, *tmp;
	uint64_t s = 0;

	HASH_ITER(hh, t->head, b, tmp)
	s += entry_sum(b->addr, b->size, b->site);
	*len = HASH_COUNT(t->head);
	return s;
}

/* The live blocks, the bucket array and the table header; no pool slack. */
static size_t uth_bytes(void *tp)
{
	struct uth *t = tp;

	if (!t->head)
		return 0;
	return HASH_COUNT(t->head) * sizeof(struct block) +
	       t->head->hh.tbl->num_buckets * sizeof(UT_hash_bucket) +
	       sizeof(UT_hash_table);
}

/* A hit walks its bucket's chain up to its own block: c(c+1)/2 in all. */
static double uth_probes(void *tp)
{
	struct uth *t = tp;
	UT_hash_table *tbl;
	double n = 0, c;
	unsigned i;

	if (!t->head)
		return 0;
	tbl = t->head->hh.tbl;
	for (i = 0; i < tbl->num_buckets; i++) {
		c = tbl->buckets[i].count;
		n += c * (c + 1) / 2;
	}
	return n / tbl->num_items;
}

static void uth_destroy(void *tp)
{
	struct uth *t = tp;
	struct block *b, *tmp;
	size_t i;

	HASH_ITER(hh, t->head, b, tmp)
	{
		HASH_DEL(t->head, b);
		if (t->malloc_each)
			free(b);
	}
	for (i = 0; i < t->nslabs; i++)
		free(t->slabs[i]);
	free(t->slabs);
	free(t);
}

static const struct table_ops uthash_ops = {
	uth_put, uth_take, uth_get, uth_sum, uth_bytes, uth_probes, uth_destroy,
};

static void *uth_create(void)
{
	return xcalloc(1, sizeof(struct uth));
}

static void *uth_create_replace(void)
{
	struct uth *t = uth_create();

	t->replace = true;
	return t;
}

static void *uth_create_malloc(void)
{
	struct uth *t = uth_create();

	t->malloc_each = true;
	return t;
}

/* ---- the runs ---------------------------------------------------------- */

struct config {
	const char *name;
	const struct table_ops *ops;
	void *(*create)(void);
	bool fib_hash;
};

static const struct config configs[] = {
	{ "u64map", &u64map_ops, um_create, false },
	{ "uthash", &uthash_ops, uth_create, false },
	{ "uthash, HASH_REPLACE", &uthash_ops, uth_create_replace, false },
	{ "uthash, u64map's hash", &uthash_ops, uth_create, true },
	{ "uthash, malloc per block", &uthash_ops, uth_create_malloc, false },
};

#define NCONFIGS (sizeof(configs) / sizeof(configs[0]))

enum phase {
	FILL,
	HIT_N,
	MISS_N,
	TAKE_N,
	REFILL,
	CHURN,
	HIT_W,
	MISS_W,
	NPHASES
};

static const char *const phase_short[NPHASES] = {
	"fill",	  "hit_N", "miss_N", "take_N",
	"refill", "churn", "hit_W",  "miss_W",
};

static const char *const phase_names[NPHASES] = {
	[FILL] = "fill: put 1,000,000 into an empty table (growth included)",
	[TAKE_N] = "take 999,999 of the 1,000,000, shuffled",
	[REFILL] = "refill: put them back (no growth)",
	[HIT_N] = "lookup hit, 1,000,000 live",
	[MISS_N] = "lookup miss, 1,000,000 live",
	[CHURN] = "churn: take + put (one free, one malloc), 100,000 live",
	[HIT_W] = "lookup hit, 100,000 live",
	[MISS_W] = "lookup miss, 100,000 live",
};

struct results {
	double ns[NCONFIGS][NPHASES][RUNS];
	size_t bytes_n[NCONFIGS], bytes_w[NCONFIGS];
	double probes_n[NCONFIGS], probes_w[NCONFIGS];
	uint64_t sink;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Time n lookups of keys[]; every one must hit, or none. */
static double time_lookups(const struct table_ops *o, void *t,
			   const uint64_t *keys, size_t n, bool hits,
			   uint64_t *sink)
{
	double t0 = now_ns();
	uint64_t s = 0, found = 0, v;
	size_t i;

	for (i = 0; i < n; i++) {
		v = o->get(t, keys[i]);
		s += v;
		found += v != 0;
	}
	t0 = now_ns() - t0;
	if (found != (hits ? n : 0)) {
		fprintf(stderr, "bench_table: %zu of %zu lookups found\n",
			(size_t)found, n);
		exit(1);
	}
	*sink += s;
	return t0 / n;
}

static void check_sum(const char *name, const char *when,
		      const struct table_ops *o, void *t, uint64_t want,
		      size_t want_len)
{
	size_t len;
	uint64_t got = o->sum(t, &len);

	if (got != want || len != want_len) {
		fprintf(stderr,
			"bench_table: %s after %s: %zu entries, sum %016" PRIx64
			", want %zu, %016" PRIx64 "\n",
			name, when, len, got, want_len, want);
		exit(1);
	}
}

/* Put the fill's blocks [from, to) in allocation order; elapsed ns. */
static double time_puts(const struct table_ops *o, void *t,
			const uint64_t *addr, uint64_t from, uint64_t to)
{
	double t0 = now_ns();
	uint64_t k;

	for (k = from; k < to; k++)
		o->put(t, addr[k], size_of(k), site_of(k));
	return now_ns() - t0;
}

/* Time n takes of keys[]; every one must be there. */
static double time_takes(const struct table_ops *o, void *t,
			 const uint64_t *keys, size_t n, uint64_t *sink)
{
	double t0 = now_ns();
	uint64_t s = 0, v;
	size_t i, found = 0;

	for (i = 0; i < n; i++) {
		v = o->take(t, keys[i]);
		s += v;
		found += v != 0;
	}
	t0 = now_ns() - t0;
	if (found != n) {
		fprintf(stderr, "bench_table: %zu of %zu takes found\n", found,
			n);
		exit(1);
	}
	*sink += s;
	return t0 / n;
}

/*
 * Take all but one block out, then put them back: the table keeps its
 * size (uthash frees its buckets only when the last block goes).
 */
static void run_refill(size_t c, int run, const struct workload *w,
		       struct results *r, void *t)
{
	const struct table_ops *o = configs[c].ops;
	double ns;

	r->ns[c][TAKE_N][run] =
		time_takes(o, t, w->fill_hits, N_FILL - 1, &r->sink);
	ns = time_puts(o, t, w->fill, 0, w->kept);
	ns += time_puts(o, t, w->fill, w->kept + 1, N_FILL);
	r->ns[c][REFILL][run] = ns / (N_FILL - 1);
	check_sum(configs[c].name, "refill", o, t, w->fill_sum, N_FILL);
}

static void run_fill(size_t c, int run, const struct workload *w,
		     struct results *r)
{
	const struct table_ops *o = configs[c].ops;
	void *t = configs[c].create();

	r->ns[c][FILL][run] = time_puts(o, t, w->fill, 0, N_FILL) / N_FILL;
	r->ns[c][HIT_N][run] =
		time_lookups(o, t, w->fill_hits, N_FILL, true, &r->sink);
	r->ns[c][MISS_N][run] =
		time_lookups(o, t, w->misses, N_FILL, false, &r->sink);
	check_sum(configs[c].name, "fill", o, t, w->fill_sum, N_FILL);
	r->bytes_n[c] = o->bytes(t);
	r->probes_n[c] = o->probes(t);
	run_refill(c, run, w, r, t);
	o->destroy(t);
}

static void run_churn(size_t c, int run, const struct workload *w,
		      struct results *r)
{
	const struct table_ops *o = configs[c].ops;
	void *t = configs[c].create();
	uint64_t s = 0, k;
	size_t i;
	double t0;

	for (k = 0; k < W_LIVE; k++)
		o->put(t, w->start[k], size_of(k), site_of(k));
	t0 = now_ns();
	for (i = 0; i < CHURN_STEPS; i++) {
		s += o->take(t, w->gone[i]);
		k = W_LIVE + i;
		o->put(t, w->born[i], size_of(k), site_of(k));
	}
	r->ns[c][CHURN][run] = (now_ns() - t0) / CHURN_STEPS;
	r->sink += s;
	r->ns[c][HIT_W][run] =
		time_lookups(o, t, w->live_hits, LOOKUPS, true, &r->sink);
	r->ns[c][MISS_W][run] =
		time_lookups(o, t, w->misses, LOOKUPS, false, &r->sink);
	check_sum(configs[c].name, "churn", o, t, w->churn_sum, W_LIVE);
	r->bytes_w[c] = o->bytes(t);
	r->probes_w[c] = o->probes(t);
	o->destroy(t);
}

static void print_run_header(void)
{
	int p;

	fprintf(stderr, "%-32s", "ns per op");
	for (p = 0; p < NPHASES; p++)
		fprintf(stderr, " %7s", phase_short[p]);
	fprintf(stderr, "\n");
}

/* Each run's figures as they come, for the spread's story (stderr). */
static void print_run(size_t c, int run, const struct results *r)
{
	int p;

	fprintf(stderr, "run %d %-26s", run + 1, configs[c].name);
	for (p = 0; p < NPHASES; p++)
		fprintf(stderr, " %7.1f", r->ns[c][p][run]);
	fprintf(stderr, "\n");
}

/* Run r starts with config r (mod NCONFIGS): each takes a turn first. */
static void run_all(const struct workload *w, struct results *r)
{
	size_t i, c;
	int run;

	for (run = 0; run < RUNS; run++) {
		for (i = 0; i < NCONFIGS; i++) {
			c = (run + i) % NCONFIGS;
			uth_fib_hash = configs[c].fib_hash;
			run_fill(c, run, w, r);
			run_churn(c, run, w, r);
			print_run(c, run, r);
		}
	}
}

/* ---- the report ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v in place: v[0] is the min, v[RUNS / 2] the median. */
static double median(double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

static void print_times(struct results *r)
{
	size_t c, p;
	double *v, m;

	printf("| ns per operation, median of %d (min-max) |", RUNS);
	for (c = 0; c < NCONFIGS; c++)
		printf(" %s |", configs[c].name);
	printf("\n| --- |");
	for (c = 0; c < NCONFIGS; c++)
		printf(" ---: |");
	printf("\n");
	for (p = 0; p < NPHASES; p++) {
		printf("| %s |", phase_names[p]);
		for (c = 0; c < NCONFIGS; c++) {
			v = r->ns[c][p];
			m = median(v);
			printf(" %.1f (%.1f-%.1f) |", m, v[0], v[RUNS - 1]);
		}
		printf("\n");
	}
}

static void print_ratios(struct results *r)
{
	size_t c, p;

	printf("| uthash / u64map (medians) |");
	for (c = 1; c < NCONFIGS; c++)
		printf(" %s |", configs[c].name);
	printf("\n| --- |");
	for (c = 1; c < NCONFIGS; c++)
		printf(" ---: |");
	printf("\n");
	for (p = 0; p < NPHASES; p++) {
		printf("| %s |", phase_names[p]);
		for (c = 1; c < NCONFIGS; c++)
			printf(" %.2fx |",
			       median(r->ns[c][p]) / median(r->ns[0][p]));
		printf("\n");
	}
}

/* glibc's chunk for one malloc'd block: usable size plus its header. */
static size_t malloc_chunk_bytes(size_t n)
{
	void *p = malloc(n);
	size_t chunk = malloc_usable_size(p) + sizeof(size_t);

	free(p);
	return chunk;
}

static void print_memory(const struct results *r)
{
	size_t chunk = malloc_chunk_bytes(sizeof(struct block));

	printf("| bytes per live entry | 1,000,000 live | 100,000 live |\n");
	printf("| --- | ---: | ---: |\n");
	printf("| u64map (`u64map__bytes`: %zu-byte slots, <= 3/4 full) "
	       "| %.1f | %.1f |\n",
	       sizeof(struct u64map_entry), (double)r->bytes_n[0] / N_FILL,
	       (double)r->bytes_w[0] / W_LIVE);
	printf("| uthash, pooled blocks (%zu-byte struct, %zu of it "
	       "UT_hash_handle, + %zu-byte buckets) | %.1f | %.1f |\n",
	       sizeof(struct block), sizeof(UT_hash_handle),
	       sizeof(UT_hash_bucket), (double)r->bytes_n[1] / N_FILL,
	       (double)r->bytes_w[1] / W_LIVE);
	printf("| uthash, malloc per block (glibc chunk %zu bytes) "
	       "| %.1f | %.1f |\n",
	       chunk,
	       (double)(r->bytes_n[1] +
			N_FILL * (chunk - sizeof(struct block))) /
		       N_FILL,
	       (double)(r->bytes_w[1] +
			W_LIVE * (chunk - sizeof(struct block))) /
		       W_LIVE);
}

/*
 * What a hit touches: u64map's probes are neighbouring slots of one array,
 * uthash's are blocks reached through bucket and chain pointers.
 */
static void print_probes(const struct results *r)
{
	size_t c;

	printf("| entries a hit examines, mean | 1,000,000 live | "
	       "100,000 live |\n");
	printf("| --- | ---: | ---: |\n");
	for (c = 0; c < NCONFIGS; c++)
		printf("| %s | %.2f | %.2f |\n", configs[c].name,
		       r->probes_n[c], r->probes_w[c]);
}

static double ratio(struct results *r, size_t c, enum phase p)
{
	return median(r->ns[c][p]) / median(r->ns[0][p]);
}

/* The figures that answer the question, in a sentence or two. */
static void print_summary(struct results *r)
{
	double lo = 1e9, hi = 0, x;
	enum phase p;

	for (p = HIT_N; p < NPHASES; p++) {
		if (p != HIT_N && p != MISS_N && p != HIT_W && p != MISS_W)
			continue;
		x = ratio(r, 1, p);
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	printf("Summary: on the churn (the agent's free + malloc pair) "
	       "uthash (pooled blocks, its default hash) took %.2fx u64map's "
	       "time (%.1f against %.1f ns a "
	       "pair); %.2fx with HASH_REPLACE (u64map__put's semantics), "
	       "%.2fx with malloc per block. Lookups: %.2fx to %.2fx. "
	       "Fill: %.2fx; refill (no growth): %.2fx. Memory per live entry: "
	       "%.2fx (1,000,000 live), "
	       "%.2fx (100,000 live), pooled.\n",
	       ratio(r, 1, CHURN), median(r->ns[1][CHURN]),
	       median(r->ns[0][CHURN]), ratio(r, 2, CHURN), ratio(r, 4, CHURN),
	       lo, hi, ratio(r, 1, FILL), ratio(r, 1, REFILL),
	       (double)r->bytes_n[1] / r->bytes_n[0],
	       (double)r->bytes_w[1] / r->bytes_w[0]);
}

int main(void)
{
	static struct heap heap;
	static struct results res;
	struct workload w = { 0 };

	gen_fill(&w, &heap);
	gen_churn(&w, &heap);
	print_run_header();
	run_all(&w, &res);
	print_times(&res);
	printf("\n");
	print_ratios(&res);
	printf("\n");
	print_memory(&res);
	printf("\n");
	print_probes(&res);
	printf("\n");
	print_summary(&res);
	printf("\nChecksums: every table held exactly the generator's live "
	       "set after the fill (%d entries, %016" PRIx64 ") and after the "
	       "churn (%d "
	       "entries, "
	       "%016" PRIx64 ")."
	       "\n",
	       N_FILL, w.fill_sum, W_LIVE, w.churn_sum);
	fprintf(stderr, "bench_table: sink %" PRIu64 "\n", res.sink);
	workload_free(&w);
	return 0;
}
