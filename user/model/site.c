// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cells.h"
#include "pystacks.h"
#include "site.h"

/*
 * ---- registry: u64 key -> dense id ---------------------------------------
 * Open addressing over keys[], kept apart from the descriptions so that a
 * shared u64 table can take its place without touching anything below.
 */

/* Fibonacci hashing: ips and mixed keys alike spread over the top bits. */
static size_t key_slot(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

/* Rebuild the key index at twice the size; ids never move. */
static int index_grow(struct sites *s)
{
	size_t cap = s->index_cap ? s->index_cap * 2 : 256, i, j;
	uint32_t *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		j = key_slot(s->keys[i], cap);
		while (idx[j])
			j = (j + 1) & (cap - 1);
		idx[j] = i + 1;
	}
	free(s->index);
	s->index = idx;
	s->index_cap = cap;
	return 0;
}

/* The id of key, or -1 with *slot: the empty slot where it would go. */
static int64_t index_find(const struct sites *s, uint64_t key, size_t *slot)
{
	size_t j;

	for (j = key_slot(key, s->index_cap); s->index[j];
	     j = (j + 1) & (s->index_cap - 1))
		if (s->keys[s->index[j] - 1] == key)
			return s->index[j] - 1;
	*slot = j;
	return -1;
}

/* ---- keys and descriptions ---------------------------------------------- */

/* FNV-1a of an import's name; 0 without one, so native keys stay ips. */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (s && *s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return s ? h : 0;
}

/* One u64 for the three parts: a native-only site's key is its ip. */
static uint64_t key_of(uint64_t ip, uint64_t stack, const char *import)
{
	uint64_t key = stack ? (stack ^ (ip * 0x9E3779B97F4A7C15ULL)) : ip;

	return key ^ name_hash(import);
}

/* Room for one more site: descriptions and keys grow together. */
static int reserve(struct sites *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct site_desc *v;
	uint64_t *k;

	if (s->n < s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (v)
		s->v = v;
	k = realloc(s->keys, cap * sizeof(*k));
	if (k)
		s->keys = k;
	if (!v || !k)
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

/* A new site described: its parts now, its name at the next resolve. */
static int64_t add(struct sites *s, uint64_t key, size_t slot, uint64_t ip,
		   uint64_t stack, const char *import)
{
	struct site_desc *d;
	char *imp = import ? strdup(import) : NULL;

	if ((import && !imp) || reserve(s)) {
		free(imp);
		return -1;
	}
	d = &s->v[s->n];
	*d = (struct site_desc){
		.ip = ip, .stack = stack, .import = imp, .run = CELL_OUTSIDE
	};
	d->native.addr = ip;
	s->keys[s->n] = key;
	s->index[slot] = s->n + 1;
	return s->n++;
}

/*
 * The event path: one key, one probe; only a new site allocates. The
 * index stays at most half full, so every probe ends at an empty slot.
 */
int64_t sites__lookup_or_add(struct sites *s, uint64_t ip, uint64_t stack,
			     const char *import)
{
	uint64_t key = key_of(ip, stack, import);
	size_t slot = 0;
	int64_t id;

	if ((s->n + 1) * 2 > s->index_cap && index_grow(s))
		return -1;
	id = index_find(s, key, &slot);
	return id >= 0 ? id : add(s, key, slot, ip, stack, import);
}

/* Names while the process lives: a snapshot after exit still has them. */
void sites__resolve(struct sites *s, struct symbolizer *sym)
{
	for (; s->nresolved < s->n; s->nresolved++) {
		struct site_desc *d = &s->v[s->nresolved];

		symbolizer__resolve(sym, d->ip, &d->native);
	}
}

/* ---- frames --------------------------------------------------------------- */

/* Unresolved, the caller is still its address: never the key (a hash). */
struct site_frame sites__native_frame(const struct sites *s, uint32_t site)
{
	const struct site_desc *d = &s->v[site];

	return (struct site_frame){ .kind = FRAME_NATIVE,
				    .resolved = site < s->nresolved,
				    .function = d->native.function,
				    .module = d->native.module,
				    .addr = d->native.addr,
				    .offset = d->native.offset };
}

/* Root first, as the snapshot format has always had them. */
size_t sites__frames(const struct sites *s, const struct pystacks *py,
		     uint32_t site, struct site_frame *out, size_t max)
{
	const struct site_desc *d;
	size_t n = 0;

	if (site >= s->n || !max)
		return 0;
	d = &s->v[site];
	if (d->import && n + 1 < max)
		out[n++] = (struct site_frame){ .kind = FRAME_IMPORT,
						.module = d->import };
	if (py && d->stack)
		n += pystacks__frames(py, d->stack, out + n, max - 1 - n);
	out[n++] = sites__native_frame(s, site);
	return n;
}

/* ---- lifetime -------------------------------------------------------------- */

/* The index exists from the start: the event path never checks for it. */
int sites__init(struct sites *s)
{
	memset(s, 0, sizeof(*s));
	return index_grow(s);
}

/* Descriptions own their import and resolved names. */
void sites__free(struct sites *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].import);
		frame__free(&s->v[i].native);
	}
	free(s->v);
	free(s->keys);
	free(s->index);
	memset(s, 0, sizeof(*s));
}

/* exec: new address space, new sites; ids start again at 0. */
int sites__reset(struct sites *s)
{
	sites__free(s);
	return sites__init(s);
}

/* Everything but the names, which the child's own symbolizer gives. */
static int copy_descs(struct sites *dst, const struct sites *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		struct site_desc *d = &dst->v[i];

		*d = src->v[i];
		memset(&d->native, 0, sizeof(d->native));
		d->native.addr = d->ip;
		d->import = src->v[i].import ? strdup(src->v[i].import) : NULL;
		if (src->v[i].import && !d->import)
			return -ENOMEM;
		dst->n = i + 1;
	}
	return 0;
}

/* fork: the child's blocks name the parent's ids, so ids are kept. */
int sites__clone(struct sites *dst, const struct sites *src)
{
	size_t cap = src->cap ? src->cap : 1;

	memset(dst, 0, sizeof(*dst));
	dst->v = calloc(cap, sizeof(*dst->v));
	dst->keys = malloc(cap * sizeof(*dst->keys));
	dst->index = malloc(src->index_cap * sizeof(*dst->index));
	if (!dst->v || !dst->keys || !dst->index) {
		sites__free(dst);
		return -ENOMEM;
	}
	dst->cap = cap;
	dst->index_cap = src->index_cap;
	memcpy(dst->keys, src->keys, src->n * sizeof(*dst->keys));
	memcpy(dst->index, src->index, src->index_cap * sizeof(*dst->index));
	if (copy_descs(dst, src)) {
		sites__free(dst);
		return -ENOMEM;
	}
	return 0;
}

/* For the consumer benchmark's bytes-per-live-block figure. */
size_t sites__bytes(const struct sites *s)
{
	size_t i, n = s->cap * (sizeof(*s->v) + sizeof(*s->keys)) +
		      s->index_cap * sizeof(*s->index);

	for (i = 0; i < s->n; i++) {
		const struct site_desc *d = &s->v[i];

		n += d->import ? strlen(d->import) + 1 : 0;
		n += d->native.function ? strlen(d->native.function) + 1 : 0;
		n += d->native.module ? strlen(d->native.module) + 1 : 0;
	}
	return n;
}
