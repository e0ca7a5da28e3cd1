// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cells.h"
#include "census/census.h"
#include "pystacks.h"
#include "site.h"

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

	key ^= name_hash(import);
	return key ? key : ~0ULL; /* the registry's keys are never 0 */
}

/* Room for one more description, doubling. */
static int reserve(struct sites *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct site_desc *v;

	if (s->n < s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

/* A new site described: its parts now, its name at the next resolve. */
static int64_t add(struct sites *s, uint64_t key, uint64_t ip, uint64_t stack,
		   const char *import)
{
	struct u64map_entry old;
	struct site_desc *d;
	char *imp = import ? strdup(import) : NULL;
	bool replaced;

	if ((import && !imp) || reserve(s) ||
	    u64map__put(&s->registry, key, s->n, 0, &old, &replaced)) {
		free(imp);
		return -1;
	}
	d = &s->v[s->n];
	*d = (struct site_desc){
		.ip = ip, .stack = stack, .import = imp, .run = CELL_OUTSIDE
	};
	d->native.addr = ip;
	return s->n++;
}

/* The event path: one key, one probe; only a new site allocates. */
int64_t sites__lookup_or_add(struct sites *s, uint64_t ip, uint64_t stack,
			     const char *import)
{
	uint64_t key = key_of(ip, stack, import);
	const struct u64map_entry *e = u64map__get(&s->registry, key);

	return e ? (int64_t)e->val : add(s, key, ip, stack, import);
}

int64_t sites__add_before(struct sites *s, int kind)
{
	if (reserve(s))
		return -1;
	s->v[s->n] = (struct site_desc){ .run = CELL_OUTSIDE,
					 .before = (int8_t)(kind + 1) };
	return s->n++;
}

/* Names while the process lives: a snapshot after exit still has them. */
void sites__resolve(struct sites *s, struct symbolizer *sym)
{
	for (; s->nresolved < s->n; s->nresolved++) {
		struct site_desc *d = &s->v[s->nresolved];

		if (d->before)
			continue;
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

/* What a census site holds, as its one frame says it (names: census.h). */
static struct site_frame before_frame(int kind)
{
	static char label[CENSUS_KINDS][48];

	if (kind < 0 || kind >= CENSUS_KINDS)
		kind = CENSUS_ANON;
	if (!label[kind][0])
		snprintf(label[kind], sizeof(label[kind]), "(before attach) %s",
			 census__kind_name(kind));
	return (struct site_frame){ .kind = FRAME_MARKER,
				    .function = label[kind] };
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
	if (d->before) {
		out[n++] = before_frame(d->before - 1);
		return n;
	}
	if (d->import && n + 1 < max)
		out[n++] = (struct site_frame){ .kind = FRAME_IMPORT,
						.module = d->import };
	if (py && d->stack)
		n += pystacks__frames(py, d->stack, out + n, max - 1 - n);
	out[n++] = sites__native_frame(s, site);
	return n;
}

/* ---- lifetime -------------------------------------------------------------- */

/* The registry exists from the start: the event path never checks. */
int sites__init(struct sites *s)
{
	memset(s, 0, sizeof(*s));
	return u64map__init(&s->registry);
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
	u64map__free(&s->registry);
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
	if (!dst->v || u64map__copy(&dst->registry, &src->registry)) {
		sites__free(dst);
		return -ENOMEM;
	}
	dst->cap = cap;
	if (copy_descs(dst, src)) {
		sites__free(dst);
		return -ENOMEM;
	}
	return 0;
}

/* For the consumer benchmark's bytes-per-live-block figure. */
size_t sites__bytes(const struct sites *s)
{
	size_t i, n = s->cap * sizeof(*s->v) + u64map__bytes(&s->registry);

	for (i = 0; i < s->n; i++) {
		const struct site_desc *d = &s->v[i];

		n += d->import ? strlen(d->import) + 1 : 0;
		n += d->native.function ? strlen(d->native.function) + 1 : 0;
		n += d->native.module ? strlen(d->native.module) + 1 : 0;
	}
	return n;
}
