// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "anon.h"
#include "pymalloc.h"

/*
 * Layouts, the same in CPython 3.8-3.14 on 64-bit (docs/design/census.md
 * section 6): a pool starts with this 48-byte header, blocks follow.
 */
struct pool_header {
	uint32_t count, pad; /* ref.count in an 8-byte union */
	uint64_t freeblock, nextpool, prevpool;
	uint32_t arenaindex, szidx, nextoffset, maxnextoffset;
};

/* One entry of arena_object[maxarenas], a malloc'd array. */
struct arena_object {
	uint64_t address, pool_address;
	uint32_t nfreepools, ntotalpools;
	uint64_t freepools, nextarena, prevarena;
};

#define POOL_OVERHEAD 48
#define SMALL_POOL (4UL << 10) /* before 3.10, in 256 KiB arenas */
#define LARGE_POOL (16UL << 10) /* since 3.10, in 1 MiB arenas */
#define NCLASSES 32
#define INITIAL_ARENA_OBJECTS 16
#define MAX_ARENAS (1UL << 20) /* 1 TiB of arenas: more is not an array */
/* Consecutive valid headers that make an arena without arena_object[]:
 * one header's shape could be chance, four in a row are not. */
#define MIN_POOLS 4
/*
 * Bytes read ahead of a header: four 16 KiB pools after an arena (then
 * skip to the next one), doubling up to 1 MiB through other memory.
 */
#define AHEAD_MIN (64UL << 10)
#define AHEAD_MAX (1UL << 20)
/* Pages whose pagemap bits are read at a time (64 MiB). */
#define WINDOW_PAGES 16384
/* Blocks of the right size tried as arena_object[] at most. */
#define MAX_CANDIDATES 4096
/* [heap] searched for arena_object[] when glibc's walk gave no blocks. */
#define HEAP_SCAN_MAX (256UL << 20)

static uint64_t arena_size(uint64_t pool)
{
	return pool == LARGE_POOL ? 1UL << 20 : 256UL << 10;
}

/* An arena seen through its pools. */
struct seen {
	uint64_t first; /* its lowest valid pool */
	uint64_t pool; /* pool size */
	uint32_t index; /* arenaindex */
	uint32_t npools; /* consecutive valid pools from first */
};

/* The scan of one process's unclaimed anonymous memory for pools. */
struct scan {
	struct vmem *m;
	struct census *c;
	uint8_t *buf; /* AHEAD_MAX bytes: memory [buf_lo, buf_hi) */
	uint64_t buf_lo, buf_hi, ahead;
	uint64_t bits[WINDOW_PAGES / 64]; /* present pages of [win_lo, win_hi) */
	uint64_t win_lo, win_hi;
	struct seen cur; /* the group of consecutive pools being followed */
	struct seen *arenas; /* confirmed: MIN_POOLS pools in a row */
	size_t n, cap;
};

/* Does the process have page p? Pagemap is read a window at a time. */
static int present(struct scan *s, uint64_t p, uint64_t hi, bool *have)
{
	uint64_t ps = s->m->page_size, i;
	int err;

	if (p < s->win_lo || p >= s->win_hi) {
		s->win_lo = p;
		s->win_hi = hi - p > WINDOW_PAGES * ps ? p + WINDOW_PAGES * ps
						       : hi;
		err = vmem__present(s->m, s->win_lo, s->win_hi, s->bits);
		if (err) {
			s->win_lo = s->win_hi = 0;
			return err;
		}
	}
	i = (p - s->win_lo) / ps;
	*have = s->bits[i / 64] >> (i % 64) & 1;
	return 0;
}

/* The 48 bytes at p, read ahead in one bulk read up to hi. */
static int header(struct scan *s, uint64_t p, uint64_t hi,
		  struct pool_header *h)
{
	int err;

	if (p < s->buf_lo || p + sizeof(*h) > s->buf_hi) {
		uint64_t end = hi - p > s->ahead ? p + s->ahead : hi;

		s->buf_lo = s->buf_hi = 0;
		err = vmem__read(s->m, p, s->buf, end - p);
		if (err)
			return err;
		s->buf_lo = p;
		s->buf_hi = end;
		if (s->ahead < AHEAD_MAX)
			s->ahead *= 2;
	}
	memcpy(h, s->buf + (p - s->buf_lo), sizeof(*h));
	return 0;
}

/* The acceptance rules of a pool header at p for one pool size. */
static bool pool_ok(const struct pool_header *h, uint64_t p, uint64_t pool)
{
	uint64_t size = 16 * ((uint64_t)h->szidx + 1);

	if (h->szidx >= NCLASSES || p % pool)
		return false;
	if (h->maxnextoffset != pool - size)
		return false;
	if (h->nextoffset <= POOL_OVERHEAD || h->nextoffset > pool ||
	    (h->nextoffset - POOL_OVERHEAD) % size)
		return false;
	if (h->count > (pool - POOL_OVERHEAD) / size)
		return false;
	/* The free list's head is a block of this pool, or none. */
	return !h->freeblock ||
	       (h->freeblock >= p + POOL_OVERHEAD && h->freeblock < p + pool &&
		(h->freeblock - p - POOL_OVERHEAD) % size == 0);
}

/* The pool size whose rules the header at p meets; 0 for none. */
static uint64_t pool_size(const struct pool_header *h, uint64_t p)
{
	if (pool_ok(h, p, LARGE_POOL))
		return LARGE_POOL;
	if (pool_ok(h, p, SMALL_POOL))
		return SMALL_POOL;
	return 0;
}

static int push_arena(struct scan *s, const struct seen *a)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct seen *v = realloc(s->arenas, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->arenas = v;
		s->cap = cap;
	}
	s->arenas[s->n++] = *a;
	return 0;
}

/*
 * A valid pool at p: it extends the group when it is the next pool of
 * the same arena, else starts one. Returns where to look next: past the
 * arena once the group is confirmed (no later arena starts before).
 */
static int follow(struct scan *s, uint64_t p, uint64_t pool,
		  const struct pool_header *h, uint64_t *next)
{
	struct seen *g = &s->cur;
	int err;

	if (g->npools && g->pool == pool && g->index == h->arenaindex &&
	    p == g->first + g->npools * pool) {
		g->npools++;
	} else {
		*g = (struct seen){ .first = p,
				    .pool = pool,
				    .index = h->arenaindex,
				    .npools = 1 };
	}
	*next = p + pool;
	if (g->npools < MIN_POOLS)
		return 0;
	err = push_arena(s, g);
	*next = g->first + arena_size(pool) - pool + s->m->page_size;
	s->ahead = AHEAD_MIN;
	g->npools = 0;
	return err;
}

/* Look for pools in one unclaimed piece [lo, hi) (page-aligned). */
static int scan_piece(struct scan *s, uint64_t lo, uint64_t hi)
{
	uint64_t p = lo, next, pool, ps = s->m->page_size;
	struct pool_header h;
	bool have;
	int err;

	s->cur.npools = 0;
	while (p < hi) {
		err = present(s, p, hi, &have);
		if (!err && have && hi - p >= sizeof(h))
			err = header(s, p, hi, &h);
		if (err)
			return err;
		pool = have ? pool_size(&h, p) : 0;
		if (!pool) {
			s->cur.npools = 0;
			p += ps;
			continue;
		}
		err = follow(s, p, pool, &h, &next);
		if (err)
			return err;
		p = next;
	}
	return 0;
}

/* Arenas are mmapped on their own: never in [heap] or [stack]. */
static int scan_memory(struct scan *s)
{
	uint64_t ps = s->m->page_size, lo, piece_hi;
	size_t i;
	int err;

	census__sort_claimed(s->c);
	for (i = 0; i < s->m->n; i++) {
		const struct vma *v = &s->m->v[i];

		if (!anon__private_rw(v) || !strcmp(v->path, "[heap]"))
			continue;
		for (lo = v->lo;
		     census__next_unclaimed(s->c, &lo, v->hi, &piece_hi);
		     lo = piece_hi) {
			uint64_t a = (lo + ps - 1) / ps * ps,
				 b = piece_hi / ps * ps;

			err = a < b ? scan_piece(s, a, b) : 0;
			if (err == -ESRCH || err == -ENOMEM)
				return err;
		}
	}
	return 0;
}

/* One process has one pool size: keep the arenas of the most common. */
static uint64_t keep_majority(struct scan *s)
{
	size_t i, large = 0, n = 0;
	uint64_t pool;

	for (i = 0; i < s->n; i++)
		large += s->arenas[i].pool == LARGE_POOL;
	pool = large * 2 >= s->n ? LARGE_POOL : SMALL_POOL;
	for (i = 0; i < s->n; i++)
		if (s->arenas[i].pool == pool)
			s->arenas[n++] = s->arenas[i];
	s->n = n;
	return pool;
}

/* An entry as pymalloc leaves it: unused (0), or a whole arena. */
static bool entry_ok(const struct arena_object *e, uint64_t pool, uint64_t ps)
{
	uint64_t arena = arena_size(pool);

	if (!e->address)
		return true;
	return e->address % ps == 0 && e->pool_address >= e->address &&
	       e->pool_address <= e->address + arena &&
	       e->ntotalpools <= arena / pool &&
	       e->nfreepools <= e->ntotalpools;
}

/*
 * Is e[0..n) arena_object[]? Every entry looks like one, and each arena
 * seen holds its own first pool: [address, address + ARENA).
 */
static bool is_arena_array(const struct scan *s, const struct arena_object *e,
			   size_t n, uint64_t pool)
{
	uint64_t arena = arena_size(pool), ps = s->m->page_size;
	size_t i;

	for (i = 0; i < s->n; i++) {
		const struct seen *a = &s->arenas[i];

		if (a->index >= n || !e[a->index].address ||
		    e[a->index].address > a->first ||
		    a->first >= e[a->index].address + arena)
			return false;
	}
	for (i = 0; i < n; i++)
		if (!entry_ok(&e[i], pool, ps))
			return false;
	return true;
}

/* The highest arenaindex seen, so the array has more entries. */
static uint32_t max_index(const struct scan *s)
{
	uint32_t m = 0;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->arenas[i].index > m)
			m = s->arenas[i].index;
	return m;
}

/* maxarenas for a block of usable bytes: 16 doubled, 48 B each. */
static size_t entries_in(uint64_t usable, uint64_t slack)
{
	size_t n = INITIAL_ARENA_OBJECTS;

	if (usable / sizeof(struct arena_object) > MAX_ARENAS)
		return 0;
	while (n * 2 <= usable / sizeof(struct arena_object))
		n *= 2;
	if (n * sizeof(struct arena_object) > usable ||
	    usable - n * sizeof(struct arena_object) >= slack)
		return 0;
	return n;
}

/* Read n entries at addr and test them; *e keeps them when they are. */
static int try_array(struct scan *s, uint64_t addr, size_t n, uint64_t pool,
		     struct arena_object **e)
{
	struct arena_object *v = malloc(n * sizeof(*v));
	int err;

	if (!v)
		return -ENOMEM;
	err = vmem__read(s->m, addr, v, n * sizeof(*v));
	if (err || !is_arena_array(s, v, n, pool)) {
		free(v);
		return err == -ESRCH || err == -ENOMEM ? err : 0;
	}
	*e = v;
	return 1;
}

/*
 * arena_object[] among glibc's blocks: realloc'd to 16 << k entries, so
 * a block of that size (a heap chunk's usable bytes exceed it by less
 * than 48, an mmapped chunk's by less than a page).
 */
static int array_in_blocks(struct scan *s, uint64_t pool,
			   struct arena_object **e, size_t *n)
{
	size_t i, tries = 0, min = (size_t)max_index(s) + 1;
	int found = 0;

	for (i = 0; i < s->c->nblocks && !found && tries < MAX_CANDIDATES;
	     i++) {
		const struct census_block *b = &s->c->blocks[i];
		enum census_kind k = census_block__kind(b);

		if (k != CENSUS_HEAP && k != CENSUS_MMAPPED)
			continue;
		*n = entries_in(census_block__size(b), k == CENSUS_MMAPPED
							       ? s->m->page_size
							       : sizeof(**e));
		if (*n < min)
			continue;
		tries++;
		found = try_array(s, b->addr, *n, pool, e);
	}
	return found;
}

/*
 * Without glibc's blocks, the [heap] itself: at each 16-aligned address
 * whose chunk header gives the right size, test the entries.
 */
static int array_in_heap(struct scan *s, uint64_t pool, struct arena_object **e,
			 size_t *n)
{
	size_t min = (size_t)max_index(s) + 1, tries = 0;
	const struct vma *v = NULL;
	uint64_t a, w, end;
	size_t i;
	int found = 0, err;

	for (i = 0; i < s->m->n && !v; i++)
		if (!strcmp(s->m->v[i].path, "[heap]"))
			v = &s->m->v[i];
	if (!v)
		return 0;
	end = v->hi - v->lo > HEAP_SCAN_MAX ? v->lo + HEAP_SCAN_MAX : v->hi;
	for (w = v->lo; w < end && !found; w += AHEAD_MAX - 16) {
		uint64_t len = end - w > AHEAD_MAX ? AHEAD_MAX : end - w;

		err = vmem__read(s->m, w, s->buf, len);
		if (err)
			return err == -ESRCH ? err : 0;
		for (a = w + 16; a + 8 <= w + len && !found; a += 16) {
			uint64_t size;

			memcpy(&size, s->buf + (a - 8 - w), sizeof(size));
			/* In use (the next chunk's P bit is not checked). */
			if ((size & 2) || (size & ~7ULL) < 32)
				continue;
			*n = entries_in((size & ~7ULL) - 8, sizeof(**e));
			if (*n < min || a + *n * sizeof(**e) > v->hi)
				continue;
			if (++tries > MAX_CANDIDATES)
				return 0;
			found = try_array(s, a, *n, pool, e);
		}
	}
	return found;
}

/* Record an arena [lo, hi) as Python objects, claimed. */
static int add_arena(struct census *c, uint64_t lo, uint64_t hi)
{
	int err = census__add_region(c, lo, hi, CENSUS_PYTHON);

	return err ? err : census__claim(c, lo, hi);
}

/* Exact bounds: every live entry of arena_object[]. */
static int arenas_from_array(struct scan *s, const struct arena_object *e,
			     size_t n, uint64_t pool)
{
	uint64_t arena = arena_size(pool);
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		if (!e[i].address)
			continue;
		if (!vmem__find(s->m, e[i].address) ||
		    !vmem__find(s->m, e[i].address + arena - 1)) {
			census__warn(s->c, "pymalloc arena %#llx gone",
				     (unsigned long long)e[i].address);
			continue;
		}
		err = add_arena(s->c, e[i].address, e[i].address + arena);
		if (err)
			return err;
	}
	return 0;
}

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/*
 * Bounds from the pools alone: from the first pool, one arena long, cut
 * at the mapping's end and at the next arena (an arena that did not
 * start on a pool boundary loses the pages before its first pool).
 */
static int arenas_from_pools(struct scan *s, uint64_t pool)
{
	size_t i;
	int err;

	qsort(s->arenas, s->n, sizeof(*s->arenas), seen_cmp);
	for (i = 0; i < s->n; i++) {
		const struct vma *v = vmem__find(s->m, s->arenas[i].first);
		uint64_t lo = s->arenas[i].first, hi = lo + arena_size(pool);

		if (v && hi > v->hi)
			hi = v->hi;
		if (i + 1 < s->n && hi > s->arenas[i + 1].first)
			hi = s->arenas[i + 1].first;
		err = add_arena(s->c, lo, hi);
		if (err)
			return err;
	}
	return 0;
}

/* Prefer arena_object[]'s exact bounds; else derive them from pools. */
static int record_arenas(struct scan *s)
{
	uint64_t pool = keep_majority(s);
	struct arena_object *e = NULL;
	size_t n = 0;
	int found, err;

	found = array_in_blocks(s, pool, &e, &n);
	if (!found && !s->c->count[CENSUS_HEAP])
		found = array_in_heap(s, pool, &e, &n);
	if (found < 0)
		return found;
	if (found) {
		err = arenas_from_array(s, e, n, pool);
		free(e);
		return err;
	}
	census__warn(s->c,
		     "pymalloc's arena_object[] not found, %zu arenas "
		     "bounded by their pools",
		     s->n);
	return arenas_from_pools(s, pool);
}

int pymalloc__census(struct vmem *m, struct census *c)
{
	struct scan s = { .m = m, .c = c, .ahead = AHEAD_MIN };
	int err;

	s.buf = malloc(AHEAD_MAX);
	if (!s.buf)
		return -ENOMEM;
	err = scan_memory(&s);
	if (!err && s.n)
		err = record_arenas(&s);
	free(s.buf);
	free(s.arenas);
	if (err == -ENOMEM) {
		census__warn(c, "pymalloc: out of memory");
		err = 0;
	}
	return err;
}
