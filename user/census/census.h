/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The census at attach: what a process already holds when the agent
 * comes, read from outside (process_vm_readv, never a write, never a
 * page faulted in). glibc's arenas chunk by chunk and its mmapped chunks
 * become blocks; CPython's pymalloc arenas and the other anonymous memory
 * become regions. The agent's model (model/heap.c) takes the result over,
 * reconciles it with the events that came while it was read, and counts
 * it under "(before attach)" sites. Design and measurements:
 * docs/design/census.md.
 *
 * census__take() is self-contained and thread-safe: the agent runs it on
 * a thread of its own while the event loop goes on.
 */
#ifndef MEMPROF_CENSUS_H
#define MEMPROF_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum census_kind {
	CENSUS_HEAP, /* a chunk of a glibc arena (main or not) */
	CENSUS_MMAPPED, /* a chunk glibc mmapped on its own */
	CENSUS_PYTHON, /* a pymalloc arena: Python objects */
	CENSUS_ANON, /* other anonymous memory, by resident pages */
	CENSUS_KINDS,
};

/* One live heap block: its user pointer and usable size. */
struct census_block {
	uint64_t addr; /* what malloc returned (chunk + 16) */
	uint64_t word; /* usable bytes | kind << CENSUS_KIND_SHIFT */
};

#define CENSUS_KIND_SHIFT 56
#define CENSUS_SIZE_MASK ((1ULL << CENSUS_KIND_SHIFT) - 1)

static inline uint64_t census_block__size(const struct census_block *b)
{
	return b->word & CENSUS_SIZE_MASK;
}

static inline enum census_kind census_block__kind(const struct census_block *b)
{
	return (enum census_kind)(b->word >> CENSUS_KIND_SHIFT);
}

/* A range counted whole: a pymalloc arena, a run of resident pages. */
struct census_region {
	uint64_t lo, hi;
	enum census_kind kind;
};

struct census_range {
	uint64_t lo, hi;
};

struct census {
	/* Sorted by address, no duplicates. */
	struct census_block *blocks;
	size_t nblocks, blocks_cap;
	/* Sorted by lo, disjoint. */
	struct census_region *regions;
	size_t nregions, regions_cap;
	/* Address ranges an allocator's walker accounted for (arena heaps,
	 * mmapped chunks' mappings, pymalloc arenas): not "other". */
	struct census_range *claimed;
	size_t nclaimed, claimed_cap;

	uint64_t bytes[CENSUS_KINDS], count[CENSUS_KINDS];
	uint64_t tcache_skipped, fastbin_skipped; /* free, in glibc's lists */
	uint64_t unwalked_bytes; /* heap left unread (torn or corrupt) */
	char glibc[16]; /* "2.36", "2.43"; "" when no glibc arena was found */
	char warning[256]; /* the first problem, one line; "" none */
	uint64_t started_ns, took_ns; /* CLOCK_MONOTONIC */
	uint64_t read_bytes, read_calls;
};

/* Where a process's census stands (the agent's, per process). */
enum census_state {
	CENSUS_NONE, /* not wanted: seen from its start (launched, forked) */
	CENSUS_OFF, /* --no-census */
	CENSUS_QUEUED, /* waits for the one running census */
	CENSUS_RUNNING,
	CENSUS_DONE,
	CENSUS_FAILED, /* the census could not be read: nothing counted */
};

/* What a census found and what became of it, for the outputs. */
struct census_summary {
	enum census_state state;
	uint64_t took_ns;
	char glibc[16];
	uint64_t bytes[CENSUS_KINDS], count[CENSUS_KINDS]; /* as counted */
	uint64_t tcache_skipped, fastbin_skipped;
	uint64_t in_window; /* allocated or freed while it was read */
	uint64_t unwalked_bytes;
	char warning[256];
};

/*
 * The census's words, one home for every output (inline: the offline
 * readers build without the agent's modules).
 */
static inline const char *census__kind_name(enum census_kind kind)
{
	static const char *const name[CENSUS_KINDS] = {
		[CENSUS_HEAP] = "heap",
		[CENSUS_MMAPPED] = "mmapped",
		[CENSUS_PYTHON] = "Python objects",
		[CENSUS_ANON] = "other anonymous",
	};

	return kind < CENSUS_KINDS ? name[kind] : "?";
}

/* The kind's key in the snapshot's census.bytes. */
static inline const char *census__kind_key(enum census_kind kind)
{
	static const char *const key[CENSUS_KINDS] = {
		[CENSUS_HEAP] = "heap",
		[CENSUS_MMAPPED] = "mmapped",
		[CENSUS_PYTHON] = "python",
		[CENSUS_ANON] = "anon",
	};

	return kind < CENSUS_KINDS ? key[kind] : "?";
}

/* "done", "off", ... as the snapshot writes it; NULL for CENSUS_NONE. */
static inline const char *census__state_name(enum census_state state)
{
	static const char *const name[] = {
		[CENSUS_NONE] = NULL,	    [CENSUS_OFF] = "off",
		[CENSUS_QUEUED] = "queued", [CENSUS_RUNNING] = "running",
		[CENSUS_DONE] = "done",	    [CENSUS_FAILED] = "failed",
	};

	return state <= CENSUS_FAILED ? name[state] : NULL;
}

/*
 * Take pid's census into c (zeroed by the caller). 0, or -errno when
 * nothing could be read (-ESRCH: the process is gone); a partial census
 * returns 0 with c->warning set.
 */
int census__take(pid_t pid, struct census *c);
void census__free(struct census *c);

/*
 * The block array's own memory (mmap'd: it grows by mremap and takes huge
 * pages); whoever takes c->blocks over frees it with its capacity.
 */
struct census_block *census__alloc_blocks(size_t cap);
void census__free_blocks(struct census_block *v, size_t cap);

/*
 * Room for n more blocks past c->nblocks: a walker that appends millions
 * writes c->blocks[c->nblocks++] itself (and counts them) after it. 0 or
 * -ENOMEM.
 */
int census__reserve_blocks(struct census *c, size_t n);
/* For the walkers (glibc.c, pymalloc.c, anon.c): 0 or -ENOMEM. */
int census__add_block(struct census *c, uint64_t addr, uint64_t size,
		      enum census_kind kind);
int census__add_region(struct census *c, uint64_t lo, uint64_t hi,
		       enum census_kind kind);
int census__claim(struct census *c, uint64_t lo, uint64_t hi);
/*
 * Merge c->claimed into sorted, disjoint ranges (walkers claim in any
 * order); then the next piece of [*lo, hi) no walker claimed: true with
 * it in [*lo, *piece_hi), false when none is left.
 */
void census__sort_claimed(struct census *c);
bool census__next_unclaimed(const struct census *c, uint64_t *lo, uint64_t hi,
			    uint64_t *piece_hi);
/*
 * Order c->blocks by address and drop duplicates (census__take's last
 * step; the walkers append ascending runs). 0 or -ENOMEM.
 */
int census__order_blocks(struct census *c);
/* Keep the first warning only (printf-like). */
void census__warn(struct census *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
