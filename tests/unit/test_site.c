// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "model/cells.h"
#include "model/pystacks.h"
#include "model/site.h"
#include "unit.h"

#define IP_A 0x401000
#define IP_B 0x402000
#define STACK 0x5a5a5a5a5a5a5a5aULL
#define CODE 0xc0de
#define NOT_A_STACK 0xdeadULL

int memprof_site_target(int x);

/* A function of this binary whose name the symbolizer can find. */
__attribute__((noinline, used)) int memprof_site_target(int x)
{
	volatile int v = x;

	return v * 7 + 1;
}

/* One Python stack of one frame: f() in /app/x.py, line 12. */
static void one_stack(struct pystacks *ps)
{
	struct rec_pycode c;
	struct rec_pystack *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	pystacks__init(ps);
	memset(&c, 0, sizeof(c));
	c.code_id = CODE;
	c.firstlineno = 12;
	strcpy(c.filename, "/app/x.py");
	strcpy(c.name, "f");
	cr_assert_eq(pystacks__add_code(ps, &c), 0);
	s->stack_id = STACK;
	s->depth = 1;
	s->frames[0].code_id = CODE;
	s->frames[0].lasti = -1;
	cr_assert_eq(pystacks__add_stack(ps, s), 0);
	free(s);
}

Test(site, ids_in_order_and_stable, .timeout = 10)
{
	struct sites s;
	uint64_t k;

	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, 0, NULL), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, 0, NULL), 1);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, 0, NULL), 0);
	/* Many sites: the index and descriptions grow, ids never move. */
	for (k = 0; k < 10000; k++)
		cr_assert_eq(sites__lookup_or_add(&s, 0x7000000 + k * 5, 0,
						  NULL),
			     (int64_t)k + 2);
	for (k = 0; k < 10000; k++)
		cr_assert_eq(sites__lookup_or_add(&s, 0x7000000 + k * 5, 0,
						  NULL),
			     (int64_t)k + 2);
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, 0, NULL), 1);
	cr_assert_eq(s.n, 10002);
	cr_assert_eq(s.v[2].ip, 0x7000000);
	cr_assert_eq(s.v[2].run, CELL_OUTSIDE);
	cr_assert_eq(s.nresolved, 0);
	sites__free(&s);
	sites__free(&s); /* idempotent */
}

/* The same caller under another stack or import is another site. */
Test(site, parts_make_the_site, .timeout = 10)
{
	struct sites s;

	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, 0, NULL), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, NULL), 1);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, "numpy"), 2);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, 0, "numpy"), 3);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, "numpy"), 2);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, "pandas"), 4);
	cr_assert_eq(s.v[1].ip, IP_A);
	cr_assert_eq(s.v[1].stack, STACK);
	cr_assert_null(s.v[1].import);
	cr_assert_str_eq(s.v[2].import, "numpy");
	cr_assert_eq(s.v[2].stack, STACK);
	cr_assert_eq(s.v[3].stack, 0);
	/* Unresolved, a native caller is known by its address. */
	cr_assert_eq(s.v[2].native.addr, IP_A);
	cr_assert_null(s.v[2].native.function);
	sites__free(&s);
}

/*
 * A site with a Python stack is keyed by a hash of its parts; its native
 * caller must still be resolved from its ip (the agent once resolved the
 * key, a hash, as if it were an address: a garbage or unknown frame).
 */
Test(site, python_site_resolves_its_native_ip, .timeout = 10)
{
	uintptr_t fn = (uintptr_t)&memprof_site_target;
	struct site_frame f[SITE_MAX_FRAMES];
	struct symbolizer sym;
	struct pystacks ps;
	struct sites s;
	size_t n;

	one_stack(&ps);
	symbolizer__init(&sym, getpid());
	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, fn + 3, STACK, NULL), 0);
	cr_assert_eq(sites__lookup_or_add(&s, fn + 5, STACK, "numpy"), 1);
	cr_assert_null(u64map__get(&s.registry, fn + 3), "the key is a hash, "
							 "not the ip");
	sites__resolve(&s, &sym);
	cr_assert_eq(s.nresolved, 2);
	cr_assert_str_eq(s.v[0].native.function, "memprof_site_target");
	cr_assert_eq(s.v[0].native.offset, 3);
	cr_assert_eq(s.v[0].native.addr, fn + 3);
	cr_assert_str_eq(s.v[1].native.function, "memprof_site_target");
	cr_assert_eq(s.v[1].native.offset, 5);

	n = sites__frames(&s, &ps, 1, f, SITE_MAX_FRAMES);
	cr_assert_eq(n, 3);
	cr_assert_eq(f[2].kind, FRAME_NATIVE);
	cr_assert(f[2].resolved);
	cr_assert_str_eq(f[2].function, "memprof_site_target");
	cr_assert_eq(f[2].offset, 5);
	cr_assert_eq(memprof_site_target(1), 8);
	sites__free(&s);
	symbolizer__free(&sym);
	symbolizer__cache_clear();
	pystacks__free(&ps);
}

/* "[import X]", the Python stack root first, then the native caller. */
Test(site, frames_root_first, .timeout = 10)
{
	struct site_frame f[SITE_MAX_FRAMES];
	struct pystacks ps;
	struct sites s;
	char label[96];

	one_stack(&ps);
	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, "numpy"), 0);
	cr_assert_eq(sites__frames(&s, &ps, 0, f, SITE_MAX_FRAMES), 3);
	cr_assert_eq(f[0].kind, FRAME_IMPORT);
	cr_assert_str_eq(site_frame__function(&f[0], label, sizeof(label)),
			 "[import numpy]");
	cr_assert_eq(f[1].kind, FRAME_PYTHON);
	cr_assert_str_eq(f[1].function, "f");
	cr_assert_str_eq(f[1].file, "/app/x.py");
	cr_assert_eq(f[1].line, 12);
	cr_assert_eq(f[2].kind, FRAME_NATIVE);
	cr_assert_not(f[2].resolved);
	cr_assert_eq(f[2].addr, IP_A);

	/* Names are referred to, not copied: they are the code object's. */
	cr_assert_eq(f[1].file, pystacks__code(&ps, CODE)->file);

	/* A stack never announced, a native thread, no stack at all. */
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, NOT_A_STACK, NULL), 1);
	cr_assert_eq(sites__frames(&s, &ps, 1, f, SITE_MAX_FRAMES), 2);
	cr_assert_eq(f[0].kind, FRAME_MARKER);
	cr_assert_str_eq(f[0].function, "[Python stack lost]");
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, PY_STACK_NATIVE_THREAD,
					  NULL),
		     2);
	cr_assert_eq(sites__frames(&s, &ps, 2, f, SITE_MAX_FRAMES), 2);
	cr_assert_str_eq(f[0].function, "[native thread]");
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, 0, NULL), 3);
	cr_assert_eq(sites__frames(&s, &ps, 3, f, SITE_MAX_FRAMES), 1);
	cr_assert_eq(f[0].kind, FRAME_NATIVE);

	/* Out of range or no room: nothing, never past max. */
	cr_assert_eq(sites__frames(&s, &ps, 4, f, SITE_MAX_FRAMES), 0);
	cr_assert_eq(sites__frames(&s, &ps, 0, f, 0), 0);
	cr_assert_eq(sites__frames(&s, &ps, 0, f, 1), 1);
	cr_assert_eq(f[0].kind, FRAME_NATIVE, "the native caller comes first");
	sites__free(&s);
	pystacks__free(&ps);
}

Test(site, clone_is_deep_and_resolves_anew, .timeout = 10)
{
	uintptr_t fn = (uintptr_t)&memprof_site_target;
	struct sites p, c;
	struct symbolizer sym;

	symbolizer__init(&sym, getpid());
	cr_assert_eq(sites__init(&p), 0);
	cr_assert_eq(sites__lookup_or_add(&p, IP_A, STACK, "numpy"), 0);
	cr_assert_eq(sites__lookup_or_add(&p, fn + 1, 0, NULL), 1);
	p.v[0].run = 3;
	sites__resolve(&p, &sym);

	cr_assert_eq(sites__clone(&c, &p), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.nresolved, 0, "the child's own maps name its sites");
	cr_assert_eq(c.v[0].run, 3);
	cr_assert_neq(c.v[0].import, p.v[0].import);
	cr_assert_eq(sites__lookup_or_add(&c, IP_A, STACK, "numpy"), 0,
		     "registry copied");
	cr_assert_eq(sites__lookup_or_add(&c, IP_B, 0, NULL), 2);
	cr_assert_eq(p.n, 2, "a child's new site stays in the child");
	sites__free(&p);
	cr_assert_str_eq(c.v[0].import, "numpy", "child outlives parent");
	cr_assert_eq(sites__lookup_or_add(&c, fn + 1, 0, NULL), 1);
	sites__resolve(&c, &sym);
	cr_assert_str_eq(c.v[1].native.function, "memprof_site_target");
	sites__free(&c);
	symbolizer__free(&sym);
	symbolizer__cache_clear();
}

Test(site, reset_forgets_every_site, .timeout = 10)
{
	struct sites s;

	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, STACK, "numpy"), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, 0, NULL), 1);
	cr_assert_gt(sites__bytes(&s), 0);
	cr_assert_eq(sites__reset(&s), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(s.nresolved, 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_B, 0, NULL), 0);
	sites__free(&s);
}

/* A census kind's site: one marker frame, no caller, never resolved. */
Test(site, before_attach_sites_are_one_labelled_frame, .timeout = 10)
{
	struct site_frame f[SITE_MAX_FRAMES];
	struct sites s;

	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(sites__lookup_or_add(&s, IP_A, 0, NULL), 0);
	cr_assert_eq(sites__add_before(&s, CENSUS_MMAPPED), 1);
	cr_assert_eq(sites__add_before(&s, CENSUS_PYTHON), 2);
	/* Outside the registry: an event at ip 0 is a site of its own. */
	cr_assert_eq(sites__lookup_or_add(&s, 0, 0, NULL), 3);
	cr_assert_eq(sites__frames(&s, NULL, 1, f, SITE_MAX_FRAMES), 1);
	cr_assert_eq(f[0].kind, FRAME_MARKER);
	cr_assert_str_eq(f[0].function, "(before attach) mmapped");
	cr_assert_eq(sites__frames(&s, NULL, 2, f, SITE_MAX_FRAMES), 1);
	cr_assert_str_eq(f[0].function, "(before attach) Python objects");
	cr_assert_eq(s.v[1].run, CELL_OUTSIDE);
	sites__free(&s);
}
