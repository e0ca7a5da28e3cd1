// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "model/pystacks.h"
#include "output/snapshot.h"
#include "unit.h"

#define CODE_A 0x1111000000000001ULL
#define CODE_B 0x2222000000000002ULL
#define CODE_C 0x3333000000000003ULL
#define CODE_UNKNOWN 0x4444000000000004ULL
#define STACK_1 0xaaaa000000000001ULL
#define STACK_2 0xbbbb000000000002ULL
#define STACK_UNKNOWN 0xcccc000000000003ULL

static struct rec_pycode code_rec(uint64_t id, const char *file,
				  const char *name, int firstlineno)
{
	struct rec_pycode r;

	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = 0x7f0000001000ULL;
	r.firstlineno = firstlineno;
	strncpy(r.filename, file, sizeof(r.filename) - 1);
	strncpy(r.name, name, sizeof(r.name) - 1);
	return r;
}

/* frames[] innermost first, as the probe records them. */
static struct rec_pystack *stack_rec(uint64_t id, uint32_t depth,
				     bool truncated, const uint64_t *codes,
				     const int32_t *lasti)
{
	struct rec_pystack *r = calloc(1, sizeof(*r));
	uint32_t i;

	cr_assert_not_null(r);
	r->stack_id = id;
	r->depth = depth;
	r->truncated = truncated;
	for (i = 0; i < depth && i < PY_MAX_DEPTH; i++) {
		r->frames[i].code_id = codes[i];
		r->frames[i].lasti = lasti ? lasti[i] : -1;
	}
	return r;
}

static void add_code(struct pystacks *ps, uint64_t id, const char *file,
		     const char *name, int firstlineno)
{
	struct rec_pycode r = code_rec(id, file, name, firstlineno);

	cr_assert_eq(pystacks__add_code(ps, &r), 0);
}

static void add_stack(struct pystacks *ps, uint64_t id, uint32_t depth,
		      bool truncated, const uint64_t *codes,
		      const int32_t *lasti)
{
	struct rec_pystack *r = stack_rec(id, depth, truncated, codes, lasti);

	cr_assert_eq(pystacks__add_stack(ps, r), 0);
	free(r);
}

static uint8_t *dup_bytes(const uint8_t *b, size_t n)
{
	uint8_t *p = malloc(n);

	cr_assert_not_null(p);
	memcpy(p, b, n);
	return p;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* A frame object of the rendered array; file and line NULL-able. */
static void expect_frame(json_t *arr, size_t i, const char *function,
			 const char *file, json_int_t line)
{
	json_t *f = json_array_get(arr, i), *v;

	cr_assert(json_is_object(f), "frame %zu is not an object", i);
	v = json_object_get(f, "function");
	cr_assert(json_is_string(v), "frame %zu: no function", i);
	cr_assert_str_eq(json_string_value(v), function, "frame %zu", i);
	v = json_object_get(f, "file");
	if (file) {
		cr_assert(json_is_string(v), "frame %zu: no file", i);
		cr_assert_str_eq(json_string_value(v), file, "frame %zu", i);
	} else {
		cr_assert(json_is_null(v), "frame %zu: file not null", i);
	}
	v = json_object_get(f, "line");
	if (line >= 0) {
		cr_assert(json_is_integer(v), "frame %zu: no line", i);
		cr_assert_eq(json_integer_value(v), line,
			     "frame %zu: line %lld, want %lld", i,
			     (long long)json_integer_value(v), (long long)line);
	} else {
		cr_assert(json_is_null(v), "frame %zu: line not null", i);
	}
	cr_assert(json_is_false(json_object_get(f, "native")),
		  "frame %zu: native not false", i);
}

/* The stack's typed frames as the snapshot writes them, after arr's. */
static void append_frames(const struct pystacks *ps, uint64_t stack_id,
			  json_t *arr)
{
	struct site_frame f[PY_MAX_DEPTH + 1];
	size_t i, n = pystacks__frames(ps, stack_id, f, PY_MAX_DEPTH + 1);

	for (i = 0; i < n; i++)
		json_array_append_new(arr, snapshot__frame(&f[i]));
}

static json_t *render(const struct pystacks *ps, uint64_t stack_id)
{
	json_t *arr = json_array();

	cr_assert_not_null(arr);
	append_frames(ps, stack_id, arr);
	return arr;
}

Test(pystacks, empty_lookups, .timeout = 10)
{
	struct pystacks ps;

	pystacks__init(&ps);
	cr_assert_null(pystacks__code(&ps, CODE_A));
	cr_assert_null(pystacks__stack(&ps, STACK_1));
	cr_assert_null(pystacks__code(&ps, 0));
	pystacks__free(&ps);
	pystacks__free(&ps); /* idempotent */
}

Test(pystacks, add_and_lookup, .timeout = 10)
{
	static const uint64_t codes[] = { CODE_A, CODE_B };
	static const int32_t lasti[] = { 4, -1 };
	const struct py_code *c;
	const struct py_stack *s;
	struct pystacks ps;

	pystacks__init(&ps);
	add_code(&ps, CODE_A, "/app/a.py", "inner", 10);
	add_code(&ps, CODE_B, "/app/b.py", "Outer.method", 20);
	add_stack(&ps, STACK_1, 2, false, codes, lasti);

	c = pystacks__code(&ps, CODE_A);
	cr_assert_not_null(c);
	cr_assert_eq(c->id, CODE_A);
	cr_assert_str_eq(c->file, "/app/a.py");
	cr_assert_str_eq(c->name, "inner");
	cr_assert_eq(c->firstlineno, 10);
	cr_assert_null(c->table);
	cr_assert_eq(c->table_len, 0);
	c = pystacks__code(&ps, CODE_B);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->file, "/app/b.py");
	cr_assert_str_eq(c->name, "Outer.method");
	cr_assert_eq(c->firstlineno, 20);
	cr_assert_null(pystacks__code(&ps, CODE_C));

	s = pystacks__stack(&ps, STACK_1);
	cr_assert_not_null(s);
	cr_assert_eq(s->id, STACK_1);
	cr_assert_eq(s->depth, 2);
	cr_assert_not(s->truncated);
	cr_assert_eq(s->frames[0].code_id, CODE_A);
	cr_assert_eq(s->frames[0].lasti, 4);
	cr_assert_eq(s->frames[1].code_id, CODE_B);
	cr_assert_eq(s->frames[1].lasti, -1);
	cr_assert_null(pystacks__stack(&ps, STACK_2));
	/* Codes and stacks are separate id spaces. */
	cr_assert_null(pystacks__stack(&ps, CODE_A));
	cr_assert_null(pystacks__code(&ps, STACK_1));
	pystacks__free(&ps);
}

Test(pystacks, duplicate_adds_are_noops, .timeout = 10)
{
	static const uint64_t one[] = { CODE_A };
	static const uint64_t two[] = { CODE_B, CODE_C };
	const struct py_stack *s;
	struct pystacks ps;

	pystacks__init(&ps);
	add_code(&ps, CODE_A, "/app/a.py", "first", 10);
	add_code(&ps, CODE_A, "/app/other.py", "second", 99);
	cr_assert_eq(ps.ncodes, 1);
	cr_assert_str_eq(pystacks__code(&ps, CODE_A)->name, "first");
	cr_assert_str_eq(pystacks__code(&ps, CODE_A)->file, "/app/a.py");
	cr_assert_eq(pystacks__code(&ps, CODE_A)->firstlineno, 10);

	add_stack(&ps, STACK_1, 1, false, one, NULL);
	add_stack(&ps, STACK_1, 2, true, two, NULL);
	cr_assert_eq(ps.nstacks, 1);
	s = pystacks__stack(&ps, STACK_1);
	cr_assert_eq(s->depth, 1);
	cr_assert_not(s->truncated);
	cr_assert_eq(s->frames[0].code_id, CODE_A);
	pystacks__free(&ps);
}

Test(pystacks, field_limits, .timeout = 10)
{
	struct rec_pycode r = code_rec(CODE_A, "", "", 1);
	struct rec_pystack *sr;
	const struct py_code *c;
	struct pystacks ps;
	uint64_t codes[PY_MAX_DEPTH];
	size_t i;

	/* Full-width strings with no NUL end at the field's size. */
	memset(r.filename, 'f', sizeof(r.filename));
	memset(r.name, 'n', sizeof(r.name));
	pystacks__init(&ps);
	cr_assert_eq(pystacks__add_code(&ps, &r), 0);
	c = pystacks__code(&ps, CODE_A);
	cr_assert_not_null(c);
	cr_assert_eq(strlen(c->file), PY_FILE_LEN);
	cr_assert_eq(strlen(c->name), PY_NAME_LEN);

	/* A depth past PY_MAX_DEPTH is clamped. */
	for (i = 0; i < PY_MAX_DEPTH; i++)
		codes[i] = CODE_A;
	sr = stack_rec(STACK_1, PY_MAX_DEPTH, true, codes, NULL);
	sr->depth = PY_MAX_DEPTH + 100;
	cr_assert_eq(pystacks__add_stack(&ps, sr), 0);
	free(sr);
	cr_assert_eq(pystacks__stack(&ps, STACK_1)->depth, PY_MAX_DEPTH);

	/* An empty stack is kept. */
	add_stack(&ps, STACK_2, 0, false, NULL, NULL);
	cr_assert_not_null(pystacks__stack(&ps, STACK_2));
	cr_assert_eq(pystacks__stack(&ps, STACK_2)->depth, 0);
	pystacks__free(&ps);
}

Test(pystacks, many_ids_survive_growth, .timeout = 10)
{
	enum { N = 10000 };
	uint64_t *ids = calloc(N, sizeof(*ids)), st = 12345;
	struct pystacks ps;
	char name[32];
	size_t i;

	cr_assert_not_null(ids);
	/* splitmix64 of a counter never repeats; half share low bits. */
	for (i = 0; i < N; i++)
		ids[i] = i % 2 ? splitmix64(&st) : (uint64_t)(i + 1) << 40;
	pystacks__init(&ps);
	for (i = 0; i < N; i++) {
		uint64_t frame = ids[(i * 7) % N];

		snprintf(name, sizeof(name), "fn%zu", i);
		add_code(&ps, ids[i], "/app/many.py", name, (int)i);
		add_stack(&ps, ids[i] ^ 0x5555, 1, false, &frame, NULL);
	}
	cr_assert_eq(ps.ncodes, N);
	cr_assert_eq(ps.nstacks, N);
	cr_assert_eq(ps.code_map.len, N);
	cr_assert_eq(ps.stack_map.len, N);
	for (i = 0; i < N; i++) {
		const struct py_code *c = pystacks__code(&ps, ids[i]);
		const struct py_stack *s =
			pystacks__stack(&ps, ids[i] ^ 0x5555);

		snprintf(name, sizeof(name), "fn%zu", i);
		cr_assert_not_null(c, "code %zu lost", i);
		cr_assert_eq(c->id, ids[i]);
		cr_assert_str_eq(c->name, name);
		cr_assert_eq(c->firstlineno, (int)i);
		cr_assert_not_null(s, "stack %zu lost", i);
		cr_assert_eq(s->id, ids[i] ^ 0x5555);
		cr_assert_eq(s->depth, 1);
		cr_assert_eq(s->frames[0].code_id, ids[(i * 7) % N]);
	}
	/* Ids never added stay unknown. */
	for (i = 0; i < 1000; i++) {
		uint64_t id = splitmix64(&st);

		cr_assert_null(pystacks__code(&ps, id));
		cr_assert_null(pystacks__stack(&ps, id));
	}
	/* Re-adding all of them changes nothing. */
	for (i = 0; i < N; i++)
		add_code(&ps, ids[i], "/other.py", "other", -1);
	cr_assert_eq(ps.ncodes, N);
	pystacks__free(&ps);
	free(ids);
}

Test(pystacks, set_table, .timeout = 10)
{
	static const uint8_t t1[] = { 4, 1, 4, 1 };
	static const uint8_t t2[] = { 8, 5 };
	const struct py_code *c;
	struct pystacks ps;

	pystacks__init(&ps);
	add_code(&ps, CODE_A, "/app/a.py", "f", 10);
	pystacks__set_table(&ps, CODE_A, dup_bytes(t1, sizeof(t1)), sizeof(t1));
	c = pystacks__code(&ps, CODE_A);
	cr_assert_not_null(c->table);
	cr_assert_eq(c->table_len, sizeof(t1));
	cr_assert_arr_eq(c->table, t1, sizeof(t1));
	/* A second table for the same code is dropped (and freed). */
	pystacks__set_table(&ps, CODE_A, dup_bytes(t2, sizeof(t2)), sizeof(t2));
	c = pystacks__code(&ps, CODE_A);
	cr_assert_eq(c->table_len, sizeof(t1));
	cr_assert_arr_eq(c->table, t1, sizeof(t1));
	/* A table for an unknown code is freed, nothing is added. */
	pystacks__set_table(&ps, CODE_UNKNOWN, dup_bytes(t2, sizeof(t2)),
			    sizeof(t2));
	cr_assert_null(pystacks__code(&ps, CODE_UNKNOWN));
	cr_assert_eq(ps.ncodes, 1);
	pystacks__set_table(&ps, CODE_UNKNOWN, NULL, 0);
	pystacks__free(&ps);
}

Test(pystacks, append_frames_root_first, .timeout = 10)
{
	/* 3.10 co_linetable: bytes 0-3 line +1, 4-7 line +1 more. */
	static const uint8_t table[] = { 4, 1, 4, 1 };
	/* Innermost first: A (lasti 3 -> 12), B (no table), C (lasti 0). */
	static const uint64_t codes[] = { CODE_A, CODE_B, CODE_C };
	static const int32_t lasti[] = { 3, 7, 0 };
	struct pystacks ps;
	json_t *arr;

	pystacks__init(&ps);
	ps.minor = 10;
	add_code(&ps, CODE_A, "/app/a.py", "leaf", 10);
	add_code(&ps, CODE_B, "/app/b.py", "middle", 20);
	add_code(&ps, CODE_C, "/app/main.py", "<module>", 1);
	pystacks__set_table(&ps, CODE_A, dup_bytes(table, sizeof(table)),
			    sizeof(table));
	pystacks__set_table(&ps, CODE_C, dup_bytes(table, sizeof(table)),
			    sizeof(table));
	add_stack(&ps, STACK_1, 3, false, codes, lasti);

	arr = render(&ps, STACK_1);
	cr_assert_eq(json_array_size(arr), 3);
	expect_frame(arr, 0, "<module>", "/app/main.py", 2);
	expect_frame(arr, 1, "middle", "/app/b.py", 20);
	expect_frame(arr, 2, "leaf", "/app/a.py", 12);

	/* Appends after what the array already holds. */
	append_frames(&ps, STACK_1, arr);
	cr_assert_eq(json_array_size(arr), 6);
	expect_frame(arr, 3, "<module>", "/app/main.py", 2);
	expect_frame(arr, 5, "leaf", "/app/a.py", 12);
	json_decref(arr);
	pystacks__free(&ps);
}

Test(pystacks, append_frames_lasti_unknown, .timeout = 10)
{
	static const uint8_t table[] = { 4, 1, 4, 1 };
	static const uint64_t codes[] = { CODE_A };
	static const int32_t lasti[] = { -1 };
	struct pystacks ps;
	json_t *arr;

	pystacks__init(&ps);
	ps.minor = 10;
	add_code(&ps, CODE_A, "/app/a.py", "f", 10);
	pystacks__set_table(&ps, CODE_A, dup_bytes(table, sizeof(table)),
			    sizeof(table));
	add_stack(&ps, STACK_1, 1, false, codes, lasti);
	arr = render(&ps, STACK_1);
	cr_assert_eq(json_array_size(arr), 1);
	expect_frame(arr, 0, "f", "/app/a.py", 10);
	json_decref(arr);
	pystacks__free(&ps);
}

Test(pystacks, append_frames_lnotab_bytes, .timeout = 10)
{
	/* 3.8 co_lnotab: lasti in bytes; 0-5 line 31, 6+ line 33. */
	static const uint8_t table[] = { 0, 1, 6, 2 };
	static const uint64_t codes[] = { CODE_A, CODE_A };
	static const int32_t lasti[] = { 4, 6 };
	struct pystacks ps;
	json_t *arr;

	pystacks__init(&ps);
	ps.minor = 8;
	add_code(&ps, CODE_A, "/app/r.py", "recurse", 30);
	pystacks__set_table(&ps, CODE_A, dup_bytes(table, sizeof(table)),
			    sizeof(table));
	add_stack(&ps, STACK_1, 2, false, codes, lasti);
	arr = render(&ps, STACK_1);
	cr_assert_eq(json_array_size(arr), 2);
	expect_frame(arr, 0, "recurse", "/app/r.py", 33);
	expect_frame(arr, 1, "recurse", "/app/r.py", 31);
	json_decref(arr);
	pystacks__free(&ps);
}

Test(pystacks, append_frames_placeholders, .timeout = 10)
{
	static const uint64_t codes[] = { CODE_A, CODE_UNKNOWN, CODE_B };
	struct pystacks ps;
	json_t *arr;

	pystacks__init(&ps);
	ps.minor = 11;
	add_code(&ps, CODE_A, "/app/a.py", "leaf", 10);
	add_code(&ps, CODE_B, "/app/b.py", "root", 20);
	add_stack(&ps, STACK_1, 3, true, codes, NULL);
	add_stack(&ps, STACK_2, 3, false, codes, NULL);

	/* Truncated: the marker comes first, then root-first frames. */
	arr = render(&ps, STACK_1);
	cr_assert_eq(json_array_size(arr), 4);
	expect_frame(arr, 0, "[truncated]", NULL, -1);
	expect_frame(arr, 1, "root", "/app/b.py", 20);
	expect_frame(arr, 2, "[unknown Python frame]", NULL, -1);
	expect_frame(arr, 3, "leaf", "/app/a.py", 10);
	json_decref(arr);

	arr = render(&ps, STACK_2);
	cr_assert_eq(json_array_size(arr), 3);
	expect_frame(arr, 0, "root", "/app/b.py", 20);
	expect_frame(arr, 1, "[unknown Python frame]", NULL, -1);
	json_decref(arr);

	arr = render(&ps, STACK_UNKNOWN);
	cr_assert_eq(json_array_size(arr), 1);
	expect_frame(arr, 0, "[Python stack lost]", NULL, -1);
	json_decref(arr);

	arr = render(&ps, PY_STACK_NATIVE_THREAD);
	cr_assert_eq(json_array_size(arr), 1);
	expect_frame(arr, 0, "[native thread]", NULL, -1);
	json_decref(arr);
	pystacks__free(&ps);
}

Test(pystacks, clone_is_deep, .timeout = 10)
{
	static const uint8_t table[] = { 4, 1, 4, 1 };
	static const uint64_t codes[] = { CODE_A, CODE_B };
	static const int32_t lasti[] = { 2, 0 };
	const struct py_code *sc, *dc;
	struct pystacks src, dst;
	json_t *before, *after;
	size_t i;

	pystacks__init(&src);
	src.minor = 10;
	add_code(&src, CODE_A, "/app/a.py", "leaf", 10);
	add_code(&src, CODE_B, "/app/b.py", "root", 20);
	pystacks__set_table(&src, CODE_A, dup_bytes(table, sizeof(table)),
			    sizeof(table));
	add_stack(&src, STACK_1, 2, true, codes, lasti);
	for (i = 0; i < 1000; i++)
		add_code(&src, 0x9000000000000000ULL + i, "/app/gen.py", "gen",
			 (int)i);
	before = render(&src, STACK_1);

	cr_assert_eq(pystacks__clone(&dst, &src), 0);
	cr_assert_eq(dst.minor, 10);
	cr_assert_eq(dst.ncodes, src.ncodes);
	cr_assert_eq(dst.nstacks, src.nstacks);
	sc = pystacks__code(&src, CODE_A);
	dc = pystacks__code(&dst, CODE_A);
	cr_assert_not_null(dc);
	cr_assert_neq(dc, sc);
	cr_assert_neq(dc->file, sc->file);
	cr_assert_neq(dc->name, sc->name);
	cr_assert_str_eq(dc->file, "/app/a.py");
	cr_assert_str_eq(dc->name, "leaf");
	cr_assert_not_null(dc->table);
	cr_assert_neq(dc->table, sc->table);
	cr_assert_eq(dc->table_len, sizeof(table));
	cr_assert_arr_eq(dc->table, table, sizeof(table));
	cr_assert_null(pystacks__code(&dst, CODE_B)->table);
	cr_assert_neq(pystacks__stack(&dst, STACK_1)->frames,
		      pystacks__stack(&src, STACK_1)->frames);
	for (i = 0; i < 1000; i++)
		cr_assert_eq(pystacks__code(&dst, 0x9000000000000000ULL + i)
				     ->firstlineno,
			     (int)i);

	/* Scribble over the source, then free it: the clone is intact. */
	memset(sc->table, 0xff, sc->table_len);
	sc->file[0] = 'X';
	pystacks__stack(&src, STACK_1)->frames[0].lasti = -1;
	pystacks__free(&src);

	after = render(&dst, STACK_1);
	cr_assert(json_equal(before, after), "clone renders differently");
	cr_assert_eq(json_array_size(after), 3);
	expect_frame(after, 0, "[truncated]", NULL, -1);
	expect_frame(after, 1, "root", "/app/b.py", 20);
	expect_frame(after, 2, "leaf", "/app/a.py", 12);

	/* And the clone grows on its own. */
	add_code(&dst, CODE_C, "/app/c.py", "new", 5);
	cr_assert_not_null(pystacks__code(&dst, CODE_C));
	json_decref(before);
	json_decref(after);
	pystacks__free(&dst);
}

Test(pystacks, clone_of_empty, .timeout = 10)
{
	struct pystacks src, dst;

	pystacks__init(&src);
	src.minor = 13;
	cr_assert_eq(pystacks__clone(&dst, &src), 0);
	cr_assert_eq(dst.minor, 13);
	cr_assert_eq(dst.ncodes, 0);
	cr_assert_eq(dst.nstacks, 0);
	cr_assert_null(pystacks__code(&dst, CODE_A));
	pystacks__free(&dst);
	pystacks__free(&src);
}
