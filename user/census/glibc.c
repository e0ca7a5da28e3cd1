// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * glibc's heap read from outside (docs/design/census.md sections 1-5, 7).
 * The walk appends every in-use chunk to the census's block array, heap by
 * heap in walk order, with local marks in the word's top bits; tcache and
 * fastbin members are marked there, and the rest is compacted into census
 * blocks at the end (census__order_blocks puts the heaps in order).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "glibc.h"

#define HEAP_MAX (64ULL << 20) /* a non-main heap's size and alignment */
#define PREV_INUSE 1ULL
#define IS_MMAPPED 2ULL
#define SIZE_BITS 7ULL
#define MINSIZE 0x20ULL
#define NBINS_SCAN 127 /* bins[] pairs the arena signature checks */
#define MIN_EMPTY_BINS 8
#define RING_HOPS 1000 /* arenas followed round the next ring */
/* One heap read: 1 MiB copies fastest, but 512 KiB walks faster (4). */
#define WALK_BUF (512U << 10)
#define MMAP_WIN (128U << 10) /* read at a mapping start: memalign's lead */
#define RETRIES 8 /* re-reads of a torn header before giving up (5) */
#define TC_SMALL_MAX 0x410ULL /* largest chunk of tcache's 64 small bins */
#define TC_MAX_BYTES 0x310 /* largest tcache struct chunk, with a remainder */
#define DEAD_TCACHE (1ULL << 63) /* local marks, above census's kind bits */
#define DEAD_FAST (1ULL << 62)
#define SMALL (1ULL << 61) /* tcache-sized: usable below, key hash above */
#define SMALL_USABLE 0xffffULL
#define HASH_SHIFT 16
#define HASH_BITS (0xffffffffULL << HASH_SHIFT)

static uint64_t chunk_size(uint64_t size_word)
{
	return size_word & ~SIZE_BITS;
}

/* What differs between arenas: by the signature (section 7). */
struct arena_layout {
	const char *name;
	unsigned top, bins, next, system_mem, size; /* malloc_state */
	unsigned fastbins, nfast; /* fastbinsY[], none in 2.43 */
	unsigned mm_extra, mm_usable_sub; /* mmapped: S = off+cs+extra */
};

static const struct arena_layout arena_layouts[] = {
	{ "2.34-2.42", 0x60, 0x70, 0x870, 0x888, 0x898, 0x10, 10, 0, 16 },
	{ "2.43", 0x08, 0x18, 0x818, 0x830, 0x840, 0, 0, 16, 8 },
};

/* The tcache struct: by libc's version (2.42 has the new one, 7). */
struct tcache_layout {
	unsigned chunk, bins, entries;
	bool slots_down; /* num_slots counting down, not counts up */
};

static const struct tcache_layout tcache_layouts[] = {
	{ 0x290, 64, 0x80, false }, /* 2.34-2.41: counts[64] */
	{ 0x300, 76, 0x98, true }, /* 2.42+: num_slots[76] */
};

/*
 * A fastbin-sized in-use chunk: its block and its fd word (fastbin lists,
 * 3). 16 B: the chunk's address is its block's, less 16.
 */
struct side {
	uint64_t w0;
	size_t idx;
};

/* A walked heap (the mmapped chunks' scan skips them). */
struct seg {
	uint64_t lo, hi;
};

struct walker {
	struct vmem *m;
	struct census *c;
	const struct arena_layout *al;
	const struct tcache_layout *tl;
	uint64_t main_arena;
	unsigned char *buf;
	uint64_t buf_lo, buf_len;
	size_t from; /* c->nblocks when the walk began: its blocks follow */
	struct seg *segs;
	size_t nsegs, capsegs;
	struct side *side;
	size_t nside, capside;
	uint64_t *votes; /* tcache_key candidates from list heads */
	size_t nvotes, capvotes;
	uint64_t tc_entries; /* entries the tcache structs found say they hold */
};

/* A chunk as the walk last saw it. */
struct seen {
	uint64_t addr, cs, w0, w1;
	size_t nb; /* c->nblocks before its header was judged */
};

/* Make room for one more element of size sz in *v (capacity *cap). */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t nc;
	void *nv;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 4096;
	nv = realloc(*v, nc * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

/*
 * grow() for the arrays that reach millions of entries: anonymous memory
 * in transparent huge pages, so filling them faults once per 2 MiB rather
 * than per 4 KiB (section 4), moved by mremap.
 */
static int grow_big(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t nc;
	void *nv;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : (2U << 20) / sz;
	if (*v)
		nv = mremap(*v, *cap * sz, nc * sz, MREMAP_MAYMOVE);
	else
		nv = mmap(NULL, nc * sz, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (nv == MAP_FAILED)
		return -ENOMEM;
	madvise(nv, nc * sz, MADV_HUGEPAGE);
	*v = nv;
	*cap = nc;
	return 0;
}

/* Free what grow_big() made. */
static void free_big(void *v, size_t cap, size_t sz)
{
	if (v)
		munmap(v, cap * sz);
}

/* ---- finding main_arena (section 1) ------------------------------------ */

/* Is this mapping libc's (libc.so.6, libc-2.xx.so)? */
static bool is_libc(const struct vma *v)
{
	const char *base = strrchr(v->path, '/');

	base = base ? base + 1 : v->path;
	return strncmp(base, "libc.so", 7) == 0 ||
	       (strncmp(base, "libc-", 5) == 0 && strstr(base, ".so"));
}

/* Does addr lie in a writable mapping (where bins' pointers go)? */
static bool in_rw(const struct vmem *m, uint64_t addr)
{
	const struct vma *v = vmem__find(m, addr);

	return v && v->perms[1] == 'w';
}

/*
 * Could d[] (the words from B on) be bins[]: each bin empty (fd == bk ==
 * the bin itself) or two 16-aligned rw pointers, and at least 8 empty?
 */
static bool bins_shape(const struct vmem *m, const uint64_t *d, uint64_t B)
{
	int i, empty = 0;

	for (i = 0; i < NBINS_SCAN; i++) {
		uint64_t fd = d[2 * i], bk = d[2 * i + 1];
		uint64_t self = B - 16 + 16 * (uint64_t)i;

		if (fd == self && bk == self) {
			empty++;
			continue;
		}
		if (fd == self || bk == self || (fd & 15) || (bk & 15) ||
		    !in_rw(m, fd) || !in_rw(m, bk))
			return false;
	}
	return empty >= MIN_EMPTY_BINS;
}

/*
 * Does the next ring starting at next come back to the arena whose bins
 * are at B, under layout al? Up to RING_HOPS arenas. -ESRCH, or 1/0.
 */
static int ring_closes(struct vmem *m, uint64_t next, uint64_t B,
		       const struct arena_layout *al)
{
	uint64_t a = next, self = B - al->bins;
	int i, err;

	for (i = 0; i < RING_HOPS && a; i++) {
		if (a == self)
			return 1;
		err = vmem__word(m, a + al->next, &a);
		if (err == -ESRCH)
			return err;
		if (err)
			return 0;
	}
	return 0;
}

/* Scan one mapping's words for bins[] + a closing ring. -ESRCH, 1, 0. */
static int scan_mapping(struct walker *w, const struct vma *v)
{
	size_t len = v->hi - v->lo, n = len / 8, j, k;
	uint64_t *d = malloc(len);
	int err = 0;

	if (!d)
		return -ENOMEM;
	err = vmem__read(w->m, v->lo, d, len);
	if (err == -EFAULT)
		err = 0;
	for (j = 0; !err && j + 2 * NBINS_SCAN + 2 <= n && j + 256 < n; j++) {
		uint64_t B = v->lo + 8 * j;

		if (!bins_shape(w->m, d + j, B))
			continue;
		for (k = 0; !err && k < 2; k++) {
			err = ring_closes(w->m, d[j + 256], B,
					  &arena_layouts[k]);
			if (err == 1) {
				w->al = &arena_layouts[k];
				w->main_arena = B - w->al->bins;
			}
		}
	}
	free(d);
	return err;
}

/*
 * main_arena: scan libc's rw mappings and the anonymous one right after
 * them (its .bss). 1 found, 0 not, -errno.
 */
static int find_main_arena(struct walker *w, bool *have_libc)
{
	const struct vmem *m = w->m;
	size_t i;
	int err;

	*have_libc = false;
	for (i = 0; i < m->n; i++) {
		const struct vma *v = &m->v[i];
		bool bss = i > 0 && !v->path[0] && v->lo == m->v[i - 1].hi &&
			   is_libc(&m->v[i - 1]) && m->v[i - 1].perms[1] == 'w';

		if (is_libc(v))
			*have_libc = true;
		if (v->perms[1] != 'w' || !(is_libc(v) || bss))
			continue;
		err = scan_mapping(w, v);
		if (err)
			return err;
	}
	return 0;
}

/* ---- libc's version (section 7: it picks the tcache struct) ---------- */

/*
 * The minor version from "GNU C Library ... version 2.xx" in the libc
 * file the process maps (through its root, for a chroot). -1 unknown.
 */
static int libc_minor(pid_t pid, const char *path)
{
	static const char tag[] = "GNU C Library";
	char fn[4096];
	struct stat st;
	int fd, minor = -1;
	const char *p, *q, *end;
	void *map;

	snprintf(fn, sizeof(fn), "/proc/%d/root%s", (int)pid, path);
	fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || st.st_size <= 0) {
		close(fd);
		return -1;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	end = (const char *)map + st.st_size;
	p = memmem(map, (size_t)st.st_size, tag, sizeof(tag) - 1);
	if (p) {
		size_t lim = (size_t)(end - p) < 256 ? (size_t)(end - p) : 256;

		q = memmem(p, lim, "version 2.", 10);
		if (q && q + 10 < end)
			minor = atoi(q + 10);
	}
	munmap(map, (size_t)st.st_size);
	return minor;
}

/* Set w->tl and c->glibc from the version, or the arena layout. */
static void pick_tcache_layout(struct walker *w, pid_t pid, const char *path)
{
	int minor = libc_minor(pid, path);
	bool new_tcache = minor >= 0 ? minor >= 42 : w->al == &arena_layouts[1];

	w->tl = &tcache_layouts[new_tcache];
	if (minor >= 0)
		snprintf(w->c->glibc, sizeof(w->c->glibc), "2.%d", minor);
	else
		snprintf(w->c->glibc, sizeof(w->c->glibc), "%s", w->al->name);
}

/* ---- tcache (section 3) --------------------------------------------- */

/*
 * 2.43's fill (tcache_count): what an empty bin's free-slot counter
 * holds, by majority over the empty bins (the 12 large bins are almost
 * always empty). A full bin counts 0 free slots, so voting over all bins
 * picks 0 when most are full. With no empty bin, the highest counter.
 */
static unsigned slots_fill(const uint16_t *slots, const uint64_t *ent,
			   unsigned n)
{
	unsigned i, j, best = 0, fill = 0, most = 0;

	for (i = 0; i < n; i++) {
		unsigned votes = 0;

		if (slots[i] > most)
			most = slots[i];
		if (ent[i])
			continue;
		for (j = 0; j < n; j++)
			votes += !ent[j] && slots[j] == slots[i];
		if (votes > best) {
			best = votes;
			fill = slots[i];
		}
	}
	return best ? fill : most;
}

/*
 * Is body (an in-use chunk of the struct's size) a tcache struct: counts
 * that fit, an entry exactly where a count says so, aligned entries?
 */
static bool tcache_shape(const struct tcache_layout *tl,
			 const unsigned char *body, uint64_t *entries)
{
	uint16_t counts[76];
	uint64_t ent[76];
	unsigned i, fill = 0;

	memcpy(counts, body, tl->bins * sizeof(counts[0]));
	memcpy(ent, body + tl->entries, tl->bins * sizeof(ent[0]));
	for (i = 0; i < tl->bins; i++)
		if (ent[i] & 15)
			return false; /* cheap first: user data fails here */
	if (tl->slots_down && (fill = slots_fill(counts, ent, tl->bins)) == 0)
		return false;
	for (i = 0; i < tl->bins; i++) {
		unsigned n = tl->slots_down ? fill - counts[i] : counts[i];

		if (tl->slots_down && counts[i] > fill)
			return false;
		if (i < 64 && (ent[i] == 0) != (n == 0))
			return false;
		*entries += n;
	}
	return true;
}

/*
 * Is h (prev_size, size, next, key of the chunk at head e of bin i) a
 * tcache entry still? Its size is the bin's, its safe-linked next ends
 * the list or is aligned and mapped rw: a chunk reused since and filled
 * with user data (the same bytes at mem+0 and mem+8) fails.
 */
static bool entry_ok(const struct vmem *m, uint64_t e, unsigned i,
		     const uint64_t *h)
{
	uint64_t next = h[2] ^ (e >> 12);

	return chunk_size(h[1]) == 32 + 16 * (uint64_t)i && h[3] &&
	       (next == 0 || ((next & 15) == 0 && in_rw(m, next)));
}

/*
 * A tcache struct's heads vote for tcache_key: each is mem of a chunk of
 * its bin's size with the key at mem+8. -ESRCH, -ENOMEM or 0.
 */
static int vote_key(struct walker *w, const unsigned char *body)
{
	uint64_t ent[64];
	unsigned i;
	int err;

	memcpy(ent, body + w->tl->entries, sizeof(ent));
	for (i = 0; i < 64; i++) {
		uint64_t h[4];

		if (!ent[i])
			continue;
		err = vmem__read(w->m, ent[i] - 16, h, sizeof(h));
		if (err == -ESRCH)
			return err;
		if (err || !entry_ok(w->m, ent[i], i, h))
			continue;
		if (grow((void **)&w->votes, &w->capvotes, w->nvotes,
			 sizeof(*w->votes)))
			return -ENOMEM;
		w->votes[w->nvotes++] = h[3];
	}
	return 0;
}

/* The most common vote, 0 when there is none. */
static uint64_t majority(const uint64_t *v, size_t n)
{
	size_t i, j, best = 0;
	uint64_t key = 0;

	for (i = 0; i < n; i++) {
		size_t votes = 0;

		for (j = 0; j < n && votes + n - j > best; j++)
			votes += v[j] == v[i];
		if (votes > best) {
			best = votes;
			key = v[i];
		}
	}
	return key;
}

/* 32 bits of the word at mem+8, kept in a tcache-sized block's word. */
static uint64_t key_hash(uint64_t w1)
{
	return ((w1 * 0x9e3779b97f4a7c15ULL) >> 32) << HASH_SHIFT;
}

/* A block word the walk wrote: its usable size, the local bits off. */
static uint64_t local_usable(uint64_t word)
{
	return word & SMALL ? word & SMALL_USABLE : word & CENSUS_SIZE_MASK;
}

/*
 * Does block i's chunk carry key at mem+8? Its hash says maybe, the word
 * read again says so (the walk kept 32 bits of it, not 16 B a chunk on
 * the side). -ESRCH, 1 or 0.
 */
static int carries_key(struct walker *w, size_t i, uint64_t key)
{
	const struct census_block *b = &w->c->blocks[i];
	uint64_t w1;
	int err;

	if ((b->word & (SMALL | HASH_BITS)) != (SMALL | key_hash(key)))
		return 0;
	err = vmem__peek(w->m, b->addr + 8, &w1);
	if (err)
		return err == -ESRCH ? err : 0;
	return w1 == key;
}

/*
 * Mark the chunks that carry the key at mem+8: tcache's. A key that more
 * chunks carry than the structs hold (twice, for torn lists) is user
 * data that won the vote: mark nothing then. 0 or -errno.
 */
static int settle_tcache(struct walker *w)
{
	uint64_t key = majority(w->votes, w->nvotes);
	uint64_t limit = 2 * w->tc_entries + 64;
	size_t i, n = 0, cap = 0, *hit = NULL;
	int err = 0;

	if (!key)
		return 0;
	for (i = w->from; i < w->c->nblocks && n <= limit; i++) {
		err = carries_key(w, i, key);
		if (err < 0)
			break;
		if (!err)
			continue;
		if (grow((void **)&hit, &cap, n, sizeof(*hit))) {
			err = -ENOMEM;
			break;
		}
		hit[n++] = i;
	}
	if (err >= 0 && n <= limit)
		for (i = 0; i < n; i++)
			w->c->blocks[hit[i]].word |= DEAD_TCACHE;
	free(hit);
	return err < 0 ? err : 0;
}

/* An in-use chunk of the struct's size: a tcache struct? Vote if so. */
static int check_tcache(struct walker *w, uint64_t chunk, uint64_t cs)
{
	unsigned char tmp[TC_MAX_BYTES];
	const unsigned char *body;
	uint64_t mem = chunk + 16, len = cs - 16;
	int err;

	if (mem >= w->buf_lo && mem + len <= w->buf_lo + w->buf_len) {
		body = w->buf + (mem - w->buf_lo);
	} else {
		err = vmem__read(w->m, mem, tmp, len);
		if (err)
			return err == -ESRCH ? err : 0;
		body = tmp;
	}
	if (!tcache_shape(w->tl, body, &w->tc_entries))
		return 0;
	return vote_key(w, body);
}

/* ---- the chunk walk (sections 2.1, 2.2, 5) ---------------------------- */

/*
 * Keep one in-use chunk: its block, appended in place (the hot path: one
 * store), a tcache-sized one with its key hash, a fastbin-sized one in
 * the side table.
 */
static int record(struct walker *w, const struct seen *s)
{
	struct census *c = w->c;
	uint64_t word = s->cs - 8;
	size_t idx = c->nblocks;
	int err;

	if (idx == c->blocks_cap && census__reserve_blocks(c, 1))
		return -ENOMEM;
	if (s->cs <= TC_SMALL_MAX)
		word |= SMALL | key_hash(s->w1);
	c->blocks[idx] = (struct census_block){ s->addr + 16, word };
	c->nblocks = idx + 1;
	if (w->al->nfast && s->cs <= 32 + 16 * (uint64_t)(w->al->nfast - 1)) {
		if (grow_big((void **)&w->side, &w->capside, w->nside,
			     sizeof(*w->side)))
			return -ENOMEM;
		w->side[w->nside++] = (struct side){ s->w0, idx };
	}
	/*
	 * The struct's chunk may be 16 B larger: a remainder under MINSIZE
	 * stays with it (seen in 2.43's thread arenas: 0x310, not 0x300).
	 */
	if (s->cs == w->tl->chunk || s->cs == w->tl->chunk + 16) {
		err = check_tcache(w, s->addr, s->cs);
		if (err)
			return err;
	}
	return 0;
}

/* Forget what was recorded from index nb on (a retried stretch). */
static void unrecord(struct walker *w, size_t nb)
{
	while (w->nside && w->side[w->nside - 1].idx >= nb)
		w->nside--;
	w->c->nblocks = nb;
}

/*
 * Have [addr, addr + want) in the buffer (want shrinks at end): read
 * from addr on, present pages only. 0 or -errno.
 */
static int need(struct walker *w, uint64_t addr, uint64_t want, uint64_t end)
{
	uint64_t len = end - addr < WALK_BUF ? end - addr : WALK_BUF;
	int err;

	if (want > end - addr)
		want = end - addr;
	if (addr >= w->buf_lo && addr + want <= w->buf_lo + w->buf_len)
		return 0;
	w->buf_len = 0;
	err = vmem__read(w->m, addr, w->buf, len);
	if (err)
		return err;
	w->buf_lo = addr;
	w->buf_len = len;
	return 0;
}

/* The word at addr, from the buffer (need() made sure it is there). */
static uint64_t buf_word(const struct walker *w, uint64_t addr)
{
	uint64_t v;

	memcpy(&v, w->buf + (addr - w->buf_lo), sizeof(v));
	return v;
}

/* One heap being walked. */
struct heapwalk {
	uint64_t arena, lo, end;
	uint64_t top; /* the arena's top when it lies in [lo, end), else 0 */
	bool current; /* the arena's top was in it or past its end: it grows */
	struct seen prev, before;
	uint64_t c;
	size_t from; /* c->nblocks when the heap's walk began */
	int retries;
};

/* Is a header's chunk size possible at c (torn and corrupt ones fail)? */
static bool size_ok(const struct heapwalk *hw, uint64_t c, uint64_t cs)
{
	return cs >= MINSIZE && (cs & 15) == 0 && cs <= hw->end - c;
}

/*
 * A header failed the checks at hw->c: top moved past it (done), or
 * re-read from the last good header, or give up on the rest of the heap.
 * 1 go on, 0 stop, -errno.
 */
static int recover(struct walker *w, struct heapwalk *hw, uint64_t size)
{
	uint64_t top, lost;
	int err = vmem__word(w->m, hw->arena + w->al->top, &top);

	if (err == -ESRCH)
		return err;
	if (!err && hw->current && top >= hw->end &&
	    chunk_size(size) >= MINSIZE && (size & 15) < 8) {
		/* The heap grew past the end the maps showed: done there. */
		return 0;
	}
	if (!err && top >= hw->lo && top < hw->end && hw->c >= top) {
		/* The arena shrank under the walk: what lies past top is not. */
		struct census *c = w->c;

		while (c->nblocks > hw->from &&
		       c->blocks[c->nblocks - 1].addr > top)
			c->nblocks--;
		unrecord(w, c->nblocks);
		return 0;
	}
	if (hw->retries++ < RETRIES) {
		vmem__forget(w->m);
		w->buf_len = 0;
		if (hw->prev.addr) {
			hw->c = hw->prev.addr;
			unrecord(w, hw->prev.nb);
			hw->prev = hw->before;
			hw->before = (struct seen){ 0 };
		}
		return 1;
	}
	if (err || top <= hw->c || top >= hw->end)
		top = hw->end;
	lost = top - hw->c;
	census__warn(w->c,
		     "census incomplete: arena 0x%" PRIx64 " from 0x%" PRIx64
		     " not walked, %" PRIu64 " bytes (size word 0x%" PRIx64 ")",
		     hw->arena, hw->c, lost, size);
	w->c->unwalked_bytes += lost;
	return 0;
}

/*
 * Walk the chunks of [lo, end) from lo: to top when top is in it, else to
 * a fencepost (an old heap's end). A chunk is in use when the next
 * header has P. 0 or -errno (-ESRCH only: a heap that fails is warned).
 */
static int walk_chunks(struct walker *w, struct heapwalk *hw)
{
	int err;

	while (hw->c + 16 <= hw->end) {
		uint64_t c = hw->c, size, cs;
		size_t nb0 = w->c->nblocks;

		err = need(w, c, 32, hw->end);
		if (err == -ESRCH || err == -ENOMEM)
			return err;
		if (err) {
			err = recover(w, hw, 0);
			if (err <= 0)
				return err;
			continue;
		}
		size = buf_word(w, c + 8);
		if (hw->prev.addr && (size & PREV_INUSE)) {
			err = record(w, &hw->prev);
			if (err)
				return err;
		}
		if (c == hw->top)
			return 0;
		cs = chunk_size(size);
		if (cs == 16 && !hw->top)
			return 0; /* the fencepost that ends an old heap */
		if (!size_ok(hw, c, cs)) {
			unrecord(w, nb0); /* P came from a bad header */
			err = recover(w, hw, size);
			if (err <= 0)
				return err;
			continue;
		}
		hw->before = hw->prev;
		hw->prev = (struct seen){ c, cs, 0, 0, nb0 };
		if (c + 32 <= w->buf_lo + w->buf_len) {
			hw->prev.w0 = buf_word(w, c + 16);
			hw->prev.w1 = buf_word(w, c + 24);
		}
		hw->c = c + cs;
	}
	return 0;
}

/*
 * Walk one heap and keep its blocks as a segment; current: the arena's
 * top is in it, or (the main heap) past the end maps showed. 0 or -errno.
 */
static int walk_heap(struct walker *w, uint64_t arena, uint64_t first,
		     uint64_t end, uint64_t top, bool current)
{
	struct heapwalk hw = { .arena = arena, .lo = first, .end = end };
	int err;

	hw.top = top >= first && top < end ? top : 0;
	hw.current = current;
	hw.c = first;
	hw.from = w->c->nblocks;
	w->buf_len = 0;
	err = walk_chunks(w, &hw);
	if (err)
		return err;
	if (grow((void **)&w->segs, &w->capsegs, w->nsegs, sizeof(*w->segs)))
		return -ENOMEM;
	w->segs[w->nsegs++] = (struct seg){ first, end };
	return 0;
}

/* The main arena's heap: [heap], from its start (= mp_.sbrk_base). */
static int walk_main(struct walker *w, uint64_t top)
{
	const struct vma *heap = NULL;
	size_t i;
	int err;

	for (i = 0; i < w->m->n && !heap; i++)
		if (strcmp(w->m->v[i].path, "[heap]") == 0)
			heap = &w->m->v[i];
	if (!heap)
		return 0; /* no brk heap: the main arena has nothing yet */
	err = census__claim(w->c, heap->lo, heap->hi);
	if (err)
		return err;
	return walk_heap(w, w->main_arena, heap->lo, heap->hi, top, true);
}

/* An arena's first chunk in its first heap: after heap_info and it. */
static uint64_t first_chunk(const struct walker *w, uint64_t h)
{
	return ((h + 0x30 + w->al->size + 16 + 15) & ~15ULL) - 16;
}

/*
 * A non-main arena's heaps: the current one from top, then heap_info's
 * prev chain. Each heap starts with heap_info (48 B); the first also holds
 * the arena. 0 or -errno.
 */
static int walk_arena(struct walker *w, uint64_t a, uint64_t top)
{
	uint64_t h = top & ~(HEAP_MAX - 1), info[4];
	int err, hops;

	for (hops = 0; h && hops < 1024; hops++) {
		err = vmem__read(w->m, h, info, sizeof(info));
		if (err == -ESRCH)
			return err;
		if (err || info[0] != a || info[2] > HEAP_MAX ||
		    info[2] < 0x30 + MINSIZE) {
			census__warn(w->c,
				     "census incomplete: arena 0x%" PRIx64
				     ": heap 0x%" PRIx64 " unreadable",
				     a, h);
			return 0;
		}
		err = census__claim(w->c, h, h + HEAP_MAX);
		if (!err)
			err = walk_heap(w, a,
					info[0] == h + 0x30 ? first_chunk(w, h)
							    : h + 0x30,
					h + info[2], top,
					top >= h && top < h + info[2]);
		if (err)
			return err;
		h = info[1];
	}
	return 0;
}

/* ---- fastbins (2.34-2.42, section 3) ----------------------------------- */

/* The chunk of side entry i (the table keeps no address of its own). */
static uint64_t side_chunk(const struct walker *w, size_t i)
{
	return w->c->blocks[w->side[i].idx].addr - 16;
}

/* Side entries by their blocks' addresses (arg: the census's blocks). */
static int side_cmp(const void *a, const void *b, void *arg)
{
	const struct census_block *blocks = arg;
	uint64_t x = blocks[((const struct side *)a)->idx].addr;
	uint64_t y = blocks[((const struct side *)b)->idx].addr;

	return x < y ? -1 : x > y;
}

/*
 * The first side entry at or after chunk, galloping out from hint: a
 * list's next chunk mostly lies near the last (frees have locality), so
 * the search stays in a few cache lines of a table of megabytes.
 */
static size_t side_lower_bound(const struct walker *w, uint64_t chunk,
			       size_t hint)
{
	size_t lo, hi, step = 1, n = w->nside;

	if (hint > n)
		hint = n;
	if (hint < n && side_chunk(w, hint) < chunk) {
		for (lo = hi = hint + 1; hi < n && side_chunk(w, hi) < chunk;
		     step *= 2) {
			lo = hi + 1;
			hi = n - hi > step ? hi + step : n;
		}
	} else {
		for (hi = lo = hint; lo > 0 && side_chunk(w, lo - 1) >= chunk;
		     step *= 2) {
			hi = lo - 1;
			lo = lo > step ? lo - step : 0;
		}
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (side_chunk(w, mid) < chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The side entry of chunk, or NULL; *at: where the search ended. */
static struct side *side_find(struct walker *w, uint64_t chunk, size_t *at)
{
	size_t i = side_lower_bound(w, chunk, *at);

	*at = i;
	return i < w->nside && side_chunk(w, i) == chunk ? &w->side[i] : NULL;
}

/*
 * Follow fastbin i from head in memory (the walk kept each small in-use
 * chunk's fd word), marking its chunks. false when the list tore.
 */
static bool follow_fastbin(struct walker *w, unsigned i, uint64_t c)
{
	uint64_t usable = 32 + 16 * (uint64_t)i - 8;
	size_t steps, at = 0;

	for (steps = 0; c && steps <= w->nside; steps++) {
		struct side *s = side_find(w, c, &at);
		struct census_block *b = s ? &w->c->blocks[s->idx] : NULL;

		if (!b || local_usable(b->word) != usable)
			return false;
		b->word |= DEAD_FAST;
		c = s->w0 ^ ((c + 16) >> 12); /* safe-linked fd */
	}
	return c == 0;
}

/* Mark an arena's fastbin chunks: each list once, redone once if torn. */
static int fastbins(struct walker *w, uint64_t a)
{
	size_t i;
	unsigned try;
	uint64_t head;
	int err;

	for (i = 1; i < w->nside; i++)
		if (side_chunk(w, i) < side_chunk(w, i - 1))
			break;
	if (i < w->nside) /* heaps came in prev order: sort once */
		qsort_r(w->side, w->nside, sizeof(*w->side), side_cmp,
			w->c->blocks);
	for (i = 0; i < w->al->nfast; i++) {
		for (try = 0; try < 2; try++) {
			err = vmem__word(w->m, a + w->al->fastbins + 8 * i,
					 &head);
			if (err == -ESRCH)
				return err;
			if (err || follow_fastbin(w, i, head))
				break;
		}
	}
	w->nside = 0;
	return 0;
}

/* ---- mmapped chunks (section 2.3) -------------------------------------- */

/* Could this VMA hold mmapped chunks: anonymous rw, no heap, no stack? */
static bool mmap_candidate(const struct walker *w, size_t i)
{
	const struct vma *v = &w->m->v[i], *below = i ? &w->m->v[i - 1] : NULL;
	size_t s;

	if (strcmp(v->perms, "rw-p") != 0 ||
	    (v->path[0] && strncmp(v->path, "[anon:", 6) != 0))
		return false;
	if (below && below->hi == v->lo) {
		if (below->path[0] == '/')
			return false; /* a file's .bss tail (libc's too) */
		if (strcmp(below->perms, "---p") == 0 &&
		    below->hi - below->lo <= (64 << 10))
			return false; /* a thread stack over its guard */
	}
	for (s = 0; s < w->nsegs; s++)
		if (v->lo < w->segs[s].hi && v->hi > w->segs[s].lo)
			return false; /* an arena heap */
	return true;
}

/* Is page i of a VMA present (bits from vmem__present)? */
static bool bit(const uint64_t *bits, uint64_t i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

/*
 * Does an mmapped chunk start at p (hdr: its prev_size and size)? Its
 * whole mapping's size S, or 0.
 */
static uint64_t mmapped_at(const struct walker *w, const uint64_t *hdr,
			   uint64_t p, uint64_t hi)
{
	uint64_t S = chunk_size(hdr[1]) + w->al->mm_extra;

	if ((hdr[1] & SIZE_BITS) != IS_MMAPPED || (hdr[0] & ~1ULL) != 0)
		return 0;
	if (S < w->m->page_size || (S & (w->m->page_size - 1)) || S > hi - p)
		return 0;
	return S;
}

/*
 * A memalign'd chunk leaves its lead unwritten, then a header whose
 * prev_size is the lead k: the first nonzero word after p+16 is either
 * that or user data. win: words read from p. The user pointer, usable.
 */
static void memalign_probe(const struct walker *w, const uint64_t *win,
			   size_t nwords, uint64_t p, uint64_t S, uint64_t *ptr,
			   uint64_t *usable)
{
	size_t i;

	for (i = 2; i + 1 < nwords; i++) {
		uint64_t k = 8 * (uint64_t)i, cs;

		if (!win[i])
			continue;
		cs = chunk_size(win[i + 1]);
		if ((win[i] & ~1ULL) == k && (k & 15) == 0 &&
		    (win[i + 1] & SIZE_BITS) == IS_MMAPPED &&
		    k + cs + w->al->mm_extra == S) {
			*ptr = p + k + 16;
			*usable = cs - w->al->mm_usable_sub;
		}
		return;
	}
}

/* Add the mmapped chunk at p (its window in w->buf) and claim it. */
static int add_mmapped(struct walker *w, uint64_t p, uint64_t S, size_t len)
{
	const uint64_t *win = (const uint64_t *)w->buf;
	uint64_t ptr = p + 16;
	uint64_t usable = chunk_size(win[1]) - w->al->mm_usable_sub;
	int err;

	memalign_probe(w, win, len / 8, p, S, &ptr, &usable);
	err = census__add_block(w->c, ptr, usable, CENSUS_MMAPPED);
	return err ? err : census__claim(w->c, p, p + S);
}

/*
 * Scan a VMA's present pages for mmapped chunk headers: a window of
 * MMAP_WIN read at a time; a chunk found is skipped whole. 0 or -errno.
 */
static int scan_vma(struct walker *w, const struct vma *v, uint64_t *bits)
{
	uint64_t ps = w->m->page_size, p = v->lo, S = 0;
	int err;

	while (p < v->hi) {
		uint64_t len = v->hi - p < MMAP_WIN ? v->hi - p : MMAP_WIN, q;

		if (!bit(bits, (p - v->lo) / ps)) {
			p += ps;
			continue;
		}
		err = vmem__read(w->m, p, w->buf, len);
		if (err)
			return err == -ESRCH ? err : 0;
		for (q = p; q < p + len; q += ps) {
			const uint64_t *hdr =
				(const uint64_t *)(w->buf + (q - p));

			if (bit(bits, (q - v->lo) / ps) &&
			    (S = mmapped_at(w, hdr, q, v->hi)))
				break;
		}
		if (q == p) {
			err = add_mmapped(w, p, S, len);
			if (err)
				return err;
			p += S;
		} else {
			p = q; /* the next chunk, read again from its start */
		}
	}
	return 0;
}

/* Every candidate VMA's mmapped chunks. 0 or -errno. */
static int scan_mmapped(struct walker *w)
{
	uint64_t *bits = NULL;
	size_t i, nbits = 0;
	int err = 0;

	for (i = 0; i < w->m->n && !err; i++) {
		struct vma run = w->m->v[i];
		const struct vma *v = &run;
		size_t need_bits;

		if (!mmap_candidate(w, i))
			continue;
		/*
		 * A chunk may span adjacent VMAs: numpy's madvise(MADV_HUGEPAGE)
		 * on an array's aligned part splits its mapping from the page
		 * that holds the header. Scan such neighbours as one.
		 */
		while (i + 1 < w->m->n && w->m->v[i + 1].lo == run.hi &&
		       mmap_candidate(w, i + 1))
			run.hi = w->m->v[++i].hi;
		need_bits = (v->hi - v->lo) / w->m->page_size / 64 + 1;
		if (need_bits > nbits) {
			free(bits);
			bits = malloc(need_bits * sizeof(*bits));
			nbits = bits ? need_bits : 0;
			if (!bits)
				return -ENOMEM;
		}
		err = vmem__present(w->m, v->lo, v->hi, bits);
		if (err == -ESRCH)
			break;
		err = err ? 0 : scan_vma(w, v, bits);
	}
	free(bits);
	return err;
}

/* ---- the census --------------------------------------------------------- */

/*
 * The walk's blocks become census blocks in place: the free chunks the
 * lists marked dropped, the local bits cleared, the rest counted.
 */
static void emit(struct walker *w)
{
	struct census *c = w->c;
	size_t i, k = w->from;
	uint64_t bytes = 0;

	for (i = w->from; i < c->nblocks; i++) {
		uint64_t word = c->blocks[i].word, usable;

		if (word & (DEAD_TCACHE | DEAD_FAST)) {
			if (word & DEAD_TCACHE)
				c->tcache_skipped++;
			else
				c->fastbin_skipped++;
			continue;
		}
		usable = local_usable(word);
		c->blocks[k].addr = c->blocks[i].addr;
		c->blocks[k].word = usable | (uint64_t)CENSUS_HEAP
						     << CENSUS_KIND_SHIFT;
		bytes += usable;
		k++;
	}
	c->bytes[CENSUS_HEAP] += bytes;
	c->count[CENSUS_HEAP] += k - w->from;
	c->nblocks = k;
}

/* Every arena round the ring from main_arena, then the fastbins. */
static int walk_arenas(struct walker *w)
{
	uint64_t a = w->main_arena, top;
	int err, n;

	for (n = 0; n < RING_HOPS; n++) {
		err = vmem__word(w->m, a + w->al->top, &top);
		if (!err)
			err = a == w->main_arena ? walk_main(w, top)
						 : walk_arena(w, a, top);
		if (!err && w->al->nfast)
			err = fastbins(w, a);
		if (!err)
			err = vmem__word(w->m, a + w->al->next, &a);
		if (err == -ESRCH || err == -ENOMEM)
			return err;
		if (err || !a || a == w->main_arena)
			return 0;
	}
	return 0;
}

/* The path of libc as the process maps it, or NULL. */
static const char *libc_path(const struct vmem *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (is_libc(&m->v[i]))
			return m->v[i].path;
	return NULL;
}

/* Has the main arena a [heap] (any malloc at all, unless sbrk failed)? */
static bool has_brk_heap(const struct vmem *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->v[i].path, "[heap]") == 0)
			return true;
	return false;
}

/* Find the arena, walk, exclude, emit: glibc__census's steps. */
static int census_steps(struct walker *w)
{
	bool have_libc;
	int err = find_main_arena(w, &have_libc);

	if (err < 0)
		return err;
	if (!w->main_arena) {
		if (have_libc && !has_brk_heap(w->m))
			return 0; /* no malloc yet: nothing to count */
		census__warn(w->c, "no glibc heap found in pid %d: %s",
			     (int)w->m->pid,
			     have_libc ? "no main_arena in libc's data (no "
					 "malloc yet, or another allocator)"
				       : "libc is not mapped");
		return 0;
	}
	pick_tcache_layout(w, w->m->pid, libc_path(w->m));
	err = walk_arenas(w);
	if (!err)
		err = settle_tcache(w);
	if (err) {
		w->c->nblocks = w->from; /* marked, not counted: none */
		return err;
	}
	emit(w);
	return scan_mmapped(w);
}

int glibc__census(struct vmem *m, struct census *c)
{
	struct walker w = { .m = m, .c = c, .from = c->nblocks };
	uint64_t reads = m->reads, bytes = m->read_bytes;
	int err;

	w.buf = malloc(WALK_BUF);
	if (!w.buf)
		return -ENOMEM;
	err = census_steps(&w);
	c->read_calls += m->reads - reads;
	c->read_bytes += m->read_bytes - bytes;
	free(w.buf);
	free(w.segs);
	free_big(w.side, w.capside, sizeof(*w.side));
	free(w.votes);
	return err == -ESRCH || err == -ENOMEM ? err : 0;
}
