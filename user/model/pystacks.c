// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pylines.h"
#include "pystacks.h"

/* ---- id -> index (lib/u64map: val), made on first use ---------------- */

/* Index n - 1 under id; the maps cost nothing until a process has Python. */
static int index_add(struct u64map *m, uint64_t id, size_t n)
{
	struct u64map_entry old;
	bool replaced;

	if (!m->slots && u64map__init(m))
		return -ENOMEM;
	return u64map__put(m, id, n - 1, 0, &old, &replaced);
}

/* ---- tables -------------------------------------------------------------- */

void pystacks__init(struct pystacks *ps)
{
	memset(ps, 0, sizeof(*ps));
}

void pystacks__free(struct pystacks *ps)
{
	size_t i;

	for (i = 0; i < ps->ncodes; i++) {
		free(ps->codes[i].file);
		free(ps->codes[i].name);
		free(ps->codes[i].table);
	}
	for (i = 0; i < ps->nstacks; i++)
		free(ps->stacks[i].frames);
	free(ps->codes);
	free(ps->stacks);
	u64map__free(&ps->code_map);
	u64map__free(&ps->stack_map);
	memset(ps, 0, sizeof(*ps));
}

const struct py_code *pystacks__code(const struct pystacks *ps, uint64_t id)
{
	const struct u64map_entry *e = u64map__get(&ps->code_map, id);

	return e ? &ps->codes[e->val] : NULL;
}

const struct py_stack *pystacks__stack(const struct pystacks *ps, uint64_t id)
{
	const struct u64map_entry *e = u64map__get(&ps->stack_map, id);

	return e ? &ps->stacks[e->val] : NULL;
}

static char *str_field(const char *s, size_t max)
{
	return strndup(s, strnlen(s, max));
}

int pystacks__add_code(struct pystacks *ps, const struct rec_pycode *r)
{
	struct py_code *c;

	if (pystacks__code(ps, r->code_id))
		return 0;
	if (ps->ncodes == ps->codes_cap) {
		size_t cap = ps->codes_cap ? ps->codes_cap * 2 : 256;

		c = realloc(ps->codes, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		ps->codes = c;
		ps->codes_cap = cap;
	}
	c = &ps->codes[ps->ncodes++];
	c->id = r->code_id;
	c->addr = r->code;
	c->file = str_field(r->filename, sizeof(r->filename));
	c->name = str_field(r->name, sizeof(r->name));
	c->firstlineno = r->firstlineno;
	c->table = NULL;
	c->table_len = 0;
	return index_add(&ps->code_map, c->id, ps->ncodes);
}

void pystacks__set_table(struct pystacks *ps, uint64_t id, uint8_t *table,
			 size_t len)
{
	struct py_code *c = (struct py_code *)pystacks__code(ps, id);

	if (!c || c->table) {
		free(table);
		return;
	}
	c->table = table;
	c->table_len = len;
}

int pystacks__add_stack(struct pystacks *ps, const struct rec_pystack *r)
{
	uint32_t depth = r->depth < PY_MAX_DEPTH ? r->depth : PY_MAX_DEPTH;
	struct py_stack *s;

	if (pystacks__stack(ps, r->stack_id))
		return 0;
	if (ps->nstacks == ps->stacks_cap) {
		size_t cap = ps->stacks_cap ? ps->stacks_cap * 2 : 256;

		s = realloc(ps->stacks, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		ps->stacks = s;
		ps->stacks_cap = cap;
	}
	s = &ps->stacks[ps->nstacks];
	s->frames = malloc((depth ? depth : 1) * sizeof(*s->frames));
	if (!s->frames)
		return -ENOMEM;
	memcpy(s->frames, r->frames, depth * sizeof(*s->frames));
	s->id = r->stack_id;
	s->depth = depth;
	s->truncated = r->truncated;
	s->seen_ns = r->ts_ns;
	ps->nstacks++;
	return index_add(&ps->stack_map, s->id, ps->nstacks);
}

/* Stacks go through a heap record: ~2 KiB is too big for the C stack. */
static int clone_stacks(struct pystacks *dst, const struct pystacks *src)
{
	struct rec_pystack *r = calloc(1, sizeof(*r));
	size_t i;
	int err = 0;

	if (!r)
		return -ENOMEM;
	for (i = 0; i < src->nstacks && !err; i++) {
		r->stack_id = src->stacks[i].id;
		r->depth = src->stacks[i].depth;
		r->truncated = src->stacks[i].truncated;
		r->ts_ns = src->stacks[i].seen_ns;
		memcpy(r->frames, src->stacks[i].frames,
		       r->depth * sizeof(r->frames[0]));
		err = pystacks__add_stack(dst, r);
	}
	free(r);
	return err;
}

int pystacks__clone(struct pystacks *dst, const struct pystacks *src)
{
	size_t i;

	pystacks__init(dst);
	dst->minor = src->minor;
	for (i = 0; i < src->ncodes; i++) {
		struct rec_pycode r = { .code_id = src->codes[i].id,
					.code = src->codes[i].addr,
					.firstlineno =
						src->codes[i].firstlineno };

		/* Names may fill their fields exactly: no NUL to keep room for. */
		memcpy(r.filename, src->codes[i].file,
		       strnlen(src->codes[i].file, sizeof(r.filename)));
		memcpy(r.name, src->codes[i].name,
		       strnlen(src->codes[i].name, sizeof(r.name)));
		if (pystacks__add_code(dst, &r))
			return -ENOMEM;
		if (src->codes[i].table) {
			uint8_t *t = malloc(src->codes[i].table_len + 1);

			if (t)
				memcpy(t, src->codes[i].table,
				       src->codes[i].table_len);
			pystacks__set_table(dst, r.code_id, t,
					    t ? src->codes[i].table_len : 0);
		}
	}
	return clone_stacks(dst, src);
}

/* ---- rendering ------------------------------------------------------------ */

int pystacks__frame_line(const struct pystacks *ps, const struct py_frame *f)
{
	const struct py_code *c = pystacks__code(ps, f->code_id);

	if (!c)
		return 0;
	return pylines__line(ps->minor, c->table, c->table_len, c->firstlineno,
			     f->lasti);
}

/* Labels are literals: nothing to free, nothing copied. */
static struct site_frame marker(const char *label)
{
	return (struct site_frame){ .kind = FRAME_MARKER, .function = label };
}

/* Names stay in the interned code object; a frame only points at them. */
static struct site_frame py_frame(const struct pystacks *ps,
				  const struct py_frame *f)
{
	const struct py_code *c = pystacks__code(ps, f->code_id);

	if (!c)
		return marker("[unknown Python frame]");
	return (struct site_frame){ .kind = FRAME_PYTHON,
				    .function = c->name,
				    .file = c->file,
				    .line = pystacks__frame_line(ps, f) };
}

/* Typed, not JSON: each output makes its own form at its edge. */
size_t pystacks__frames(const struct pystacks *ps, uint64_t stack_id,
			struct site_frame *out, size_t max)
{
	const struct py_stack *s = pystacks__stack(ps, stack_id);
	size_t n = 0;
	int64_t i;

	if (!max)
		return 0;
	if (stack_id == PY_STACK_NATIVE_THREAD || !s) {
		out[0] = marker(stack_id == PY_STACK_NATIVE_THREAD ? "[native "
								     "thread]"
								   : "[Python "
								     "stack "
								     "lost]");
		return 1;
	}
	if (s->truncated)
		out[n++] = marker("[truncated]");
	for (i = (int64_t)s->depth - 1; i >= 0 && n < max; i--)
		out[n++] = py_frame(ps, &s->frames[i]);
	return n;
}
