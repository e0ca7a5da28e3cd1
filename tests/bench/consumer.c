// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Agent throughput without the kernel: how many ring-buffer records per
 * second one core can push through events__handle into a process's heap,
 * and how much agent memory each live allocation costs.
 *
 *   consumer [-n LIVE_BLOCKS] [-r CHURN_RECORDS] [-s SITES]
 *
 * A small allocator simulation (16-byte size classes, LIFO reuse of freed
 * addresses like glibc's tcache, a bump pointer for new chunks) produces
 * the records the probes would: first LIVE_BLOCKS allocations that stay
 * live (the fill), then CHURN_RECORDS of steady-state traffic over that
 * working set: short-lived blocks freed ~1000 allocations later, long-lived
 * blocks replaced at random, and ~3% reallocs. Sites are SITES return
 * addresses with a skewed popularity. Records are generated in chunks
 * outside the timed region; only events__handle calls are timed.
 *
 * At the end the agent's heap must agree with the simulation (live blocks,
 * live bytes, no unknown frees); a mismatch is reported and exits 1.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "lib/clock.h"
#include "model/events.h"
#include "model/heap.h"
#include "lib/u64map.h"
#include "memprof.h"
#include "procs/tracee.h"

#define CHUNK (1 << 16) /* records generated, then pushed, at a time */
#define NCLASSES 520 /* 16-byte classes up to 8 KiB + header */
#define YOUNG 1024 /* short-lived blocks in flight */

/* ---- allocator simulation -------------------------------------------- */

struct stack {
	uint64_t *v;
	size_t len, cap;
};

struct sim {
	uint64_t rng;
	uint64_t bump; /* next never-used chunk address */
	struct stack freed[NCLASSES]; /* reusable addresses per class */
	uint64_t *ws_addr, *ws_size; /* long-lived blocks */
	size_t ws_len;
	uint64_t young_addr[YOUNG], young_size[YOUNG];
	size_t young_head, young_len;
	uint64_t *sites;
	int nsites;
	uint64_t live_count, live_bytes;
	uint64_t n_alloc, n_free, n_realloc;
};

struct chunk {
	uint8_t *buf;
	size_t used;
	uint32_t *len;
	uint32_t *off;
	size_t n;
};

/* splitmix64: fast and good enough to pick sizes, sites and victims. */
static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Mostly small blocks, a tail of larger ones: a typical C/Python heap. */
static uint64_t pick_size(struct sim *s)
{
	uint64_t r = rnd(s), p = r % 100;

	r >>= 8;
	if (p < 70)
		return 16 + r % 241;
	if (p < 95)
		return 256 + r % 769;
	return 1024 + r % 7169;
}

/* Product of two uniforms: a few hot sites, a long tail of cold ones. */
static uint64_t pick_site(struct sim *s)
{
	uint64_t r = rnd(s);
	uint64_t a = r % s->nsites, b = (r >> 32) % s->nsites;

	return s->sites[s->nsites > 1 ? a * b / (s->nsites - 1) : 0];
}

/* glibc-like chunk class: size plus header, in 16-byte units. */
static size_t class_of(uint64_t size)
{
	return (size + 16 + 15) / 16;
}

/* Grow-on-demand stack of reusable addresses. */
static int push(struct stack *st, uint64_t v)
{
	if (st->len == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		uint64_t *n = realloc(st->v, cap * sizeof(*n));

		if (!n)
			return -1;
		st->v = n;
		st->cap = cap;
	}
	st->v[st->len++] = v;
	return 0;
}

/* The address malloc would return: last freed of the class, else new. */
static uint64_t sim_malloc(struct sim *s, uint64_t size)
{
	struct stack *st = &s->freed[class_of(size)];
	uint64_t a;

	if (st->len)
		return st->v[--st->len];
	a = s->bump + 16;
	s->bump += class_of(size) * 16;
	return a;
}

/* A freed chunk goes on its class's list, reused first (LIFO). */
static void sim_free(struct sim *s, uint64_t addr, uint64_t size)
{
	if (push(&s->freed[class_of(size)], addr)) {
		fprintf(stderr, "consumer: out of memory\n");
		exit(1);
	}
}

/* ---- record emission ------------------------------------------------- */

static pid_t self_pid;

/* Append one zeroed record, laid out as the ring buffer would hold it. */
static void *emit(struct chunk *c, uint32_t type, size_t size)
{
	struct rec_hdr *h = (void *)(c->buf + c->used);

	memset(h, 0, size);
	h->type = type;
	h->pid = self_pid;
	c->off[c->n] = c->used;
	c->len[c->n++] = size;
	c->used += (size + 7) & ~7UL; /* ring-buffer records are 8-aligned */
	return h;
}

/* malloc(size) as the probes report it; returns the block's address. */
static uint64_t do_alloc(struct sim *s, struct chunk *c, uint64_t size)
{
	struct rec_alloc *r = emit(c, REC_ALLOC, sizeof(*r));

	r->tid = r->hdr.pid;
	r->fn = FN_MALLOC;
	r->addr = sim_malloc(s, size);
	r->size = size;
	r->site = pick_site(s);
	s->live_count++;
	s->live_bytes += size;
	s->n_alloc++;
	return r->addr;
}

/* free(addr) as the probes report it; the address becomes reusable. */
static void do_free(struct sim *s, struct chunk *c, uint64_t addr,
		    uint64_t size)
{
	struct rec_free *r = emit(c, REC_FREE, sizeof(*r));

	r->addr = addr;
	sim_free(s, addr, size);
	s->live_count--;
	s->live_bytes -= size;
	s->n_free++;
}

/* realloc: in place within the size class, else move (malloc+copy+free). */
static void do_realloc(struct sim *s, struct chunk *c, size_t k)
{
	struct rec_realloc *r = emit(c, REC_REALLOC, sizeof(*r));
	uint64_t old = s->ws_addr[k], osize = s->ws_size[k];
	uint64_t size = pick_size(s);

	r->tid = r->hdr.pid;
	r->fn = FN_REALLOC;
	r->old_addr = old;
	r->size = size;
	r->site = pick_site(s);
	if (class_of(size) == class_of(osize)) {
		r->new_addr = old;
	} else {
		r->new_addr = sim_malloc(s, size);
		sim_free(s, old, osize);
	}
	s->ws_addr[k] = r->new_addr;
	s->ws_size[k] = size;
	s->live_bytes += size - osize;
	s->n_realloc++;
}

/* One step of steady-state traffic; emits one or two records. */
static void churn_step(struct sim *s, struct chunk *c)
{
	uint64_t p = rnd(s) % 100, size;
	size_t k;

	if (p < 60) { /* short-lived: freed YOUNG allocations later */
		if (s->young_len == YOUNG) {
			do_free(s, c, s->young_addr[s->young_head],
				s->young_size[s->young_head]);
			s->young_head = (s->young_head + 1) % YOUNG;
			s->young_len--;
		}
		size = pick_size(s);
		k = (s->young_head + s->young_len++) % YOUNG;
		s->young_addr[k] = do_alloc(s, c, size);
		s->young_size[k] = size;
		return;
	}
	k = rnd(s) % s->ws_len;
	if (p < 97) { /* a long-lived block replaced */
		do_free(s, c, s->ws_addr[k], s->ws_size[k]);
		size = pick_size(s);
		s->ws_size[k] = size;
		s->ws_addr[k] = do_alloc(s, c, size);
		return;
	}
	do_realloc(s, c, k);
}

/* ---- driver ---------------------------------------------------------- */

/* Push a chunk through the agent's handler; returns the time it took. */
static uint64_t consume(struct agent *a, struct chunk *c)
{
	uint64_t t0;
	size_t i;

	a->now_ns = now_monotonic_ns(); /* as the agent does at each poll */
	t0 = now_monotonic_ns();
	for (i = 0; i < c->n; i++)
		events__handle(a, c->buf + c->off[i], c->len[i]);
	return now_monotonic_ns() - t0;
}

/* What the agent holds for sites: counters, dirty list, registry, names. */
static size_t site_bytes(const struct tracee *t)
{
	const struct heap *h = &t->heap;

	return h->sites_cap * (sizeof(struct site) + sizeof(uint32_t)) +
	       sites__bytes(&t->sites);
}

/* Agent bytes per live block: the <= 64 B goal is about this figure. */
static void report_memory(const char *when, const struct tracee *t)
{
	size_t table = u64map__bytes(&t->heap.blocks);
	size_t sites = site_bytes(t);
	uint64_t live = t->heap.live_count;

	printf("consumer: memory when=%s live_blocks=%llu blocks_table_bytes=%zu "
	       "site_bytes=%zu sites=%zu bytes_per_live=%.1f\n",
	       when, (unsigned long long)live, table, sites, t->heap.nsites,
	       live ? (double)(table + sites) / live : 0.0);
}

/* Records per second of one phase, with its mix for the record. */
static void report_rate(const char *phase, uint64_t records, uint64_t ns,
			const struct sim *s)
{
	printf("consumer: phase=%s records=%llu seconds=%.3f "
	       "records_per_s=%.0f allocs=%llu frees=%llu reallocs=%llu\n",
	       phase, (unsigned long long)records, ns / 1e9,
	       records / (ns / 1e9), (unsigned long long)s->n_alloc,
	       (unsigned long long)s->n_free, (unsigned long long)s->n_realloc);
}

/* The agent's totals must equal the simulation's: no lost or wrong bytes. */
static int check(const struct agent *a, const struct tracee *t,
		 const struct sim *s, uint64_t pushed)
{
	const struct heap *h = &t->heap;
	int bad = h->live_count != s->live_count ||
		  h->live_bytes != s->live_bytes || h->unknown_frees ||
		  a->records != pushed;

	printf("consumer: check %s agent_live=%llu/%llu B sim_live=%llu/%llu B "
	       "unknown_frees=%llu records=%llu/%llu\n",
	       bad ? "FAILED" : "ok", (unsigned long long)h->live_count,
	       (unsigned long long)h->live_bytes,
	       (unsigned long long)s->live_count,
	       (unsigned long long)s->live_bytes,
	       (unsigned long long)h->unknown_frees,
	       (unsigned long long)a->records, (unsigned long long)pushed);
	return bad;
}

/* Working-set arrays and the site addresses, before any record. */
static int sim_init(struct sim *s, size_t live, int nsites)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->rng = 42;
	s->bump = 0x55555556a000ULL; /* where a PIE's brk heap starts */
	s->ws_addr = calloc(live, sizeof(uint64_t));
	s->ws_size = calloc(live, sizeof(uint64_t));
	s->sites = calloc(nsites, sizeof(uint64_t));
	if (!s->ws_addr || !s->ws_size || !s->sites)
		return -1;
	/* Real return addresses in this binary, so symbolizing works. */
	for (i = 0; i < nsites; i++)
		s->sites[i] = (uint64_t)(uintptr_t)&churn_step + 5 + i * 8;
	s->nsites = nsites;
	return 0;
}

/* Room for CHUNK steps of up to two records of at most 48 bytes. */
static int chunk_init(struct chunk *c)
{
	c->buf = malloc((size_t)CHUNK * 2 * 48);
	c->len = malloc((size_t)CHUNK * 2 * sizeof(*c->len));
	c->off = malloc((size_t)CHUNK * 2 * sizeof(*c->off));
	return c->buf && c->len && c->off ? 0 : -1;
}

/* Bad arguments: say how to call it and exit 2. */
static void usage(void)
{
	fprintf(stderr, "usage: consumer [-n LIVE_BLOCKS] [-r CHURN_RECORDS] "
			"[-s SITES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long live = 1000000, churn = 10000000, nsites = 200;
	uint64_t ns = 0, pushed = 0, n;
	struct agent a = { 0 };
	struct chunk c = { 0 };
	struct sim s;
	struct tracee *t;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:")) != -1) {
		switch (opt) {
		case 'n':
			live = strtol(optarg, NULL, 10);
			break;
		case 'r':
			churn = strtol(optarg, NULL, 10);
			break;
		case 's':
			nsites = strtol(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || live < 1 || churn < 0 || nsites < 1)
		usage();
	self_pid = getpid();
	t = tracee__new(self_pid, true);
	if (!t || tracees__add(&a.procs, t) || sim_init(&s, live, nsites) ||
	    chunk_init(&c)) {
		fprintf(stderr, "consumer: out of memory\n");
		return 1;
	}

	/* Fill: LIVE_BLOCKS allocations that stay, growing the table. */
	for (s.ws_len = 0; s.ws_len < (size_t)live;) {
		c.used = c.n = 0;
		while (c.n < CHUNK && s.ws_len < (size_t)live) {
			uint64_t size = pick_size(&s);

			s.ws_size[s.ws_len] = size;
			s.ws_addr[s.ws_len++] = do_alloc(&s, &c, size);
		}
		ns += consume(&a, &c);
		pushed += c.n;
	}
	report_rate("fill", pushed, ns, &s);
	report_memory("after_fill", t);

	/* Churn: steady state around the working set. */
	ns = 0;
	n = 0;
	s.n_alloc = s.n_free = s.n_realloc = 0;
	while (n < (uint64_t)churn) {
		c.used = c.n = 0;
		while (c.n < CHUNK && n + c.n < (uint64_t)churn)
			churn_step(&s, &c);
		ns += consume(&a, &c);
		n += c.n;
	}
	pushed += n;
	report_rate("churn", n, ns, &s);
	report_memory("after_churn", t);
	return check(&a, t, &s, pushed);
}
