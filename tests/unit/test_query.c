// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "server/query.h"
#include "procs/tracee.h"
#include "unit.h"

/* Where the bare heaps' site ids come from; one per test process. */
static struct sites sites;

int memprof_query_target(int x);

__attribute__((noinline, used)) int memprof_query_target(int x)
{
	volatile int v = x;

	return v * 7 + 1;
}

/* ---- containment --------------------------------------------------------- */

static void expect_hit(const struct query_hit *h, enum query_kind kind,
		       uint64_t start, uint64_t size, uint32_t site,
		       uint64_t addr)
{
	cr_assert_eq(h->kind, kind, "0x%llx: kind %d, want %d",
		     (unsigned long long)addr, h->kind, kind);
	if (kind == QUERY_NONE)
		return;
	cr_assert_eq(h->start, start, "0x%llx: start 0x%llx, want 0x%llx",
		     (unsigned long long)addr, (unsigned long long)h->start,
		     (unsigned long long)start);
	cr_assert_eq(h->size, size, "0x%llx: size %llu, want %llu",
		     (unsigned long long)addr, (unsigned long long)h->size,
		     (unsigned long long)size);
	cr_assert_eq(h->site, site, "0x%llx: site %u, want %u",
		     (unsigned long long)addr, h->site, site);
}

/*
 * Blocks [0x1000, 0x1100) and [0x2000, 0x2010), a 0-byte block at 0x3000,
 * a mapping [0x10000, 0x14000) holding a block [0x10100, 0x10120).
 */
Test(query, contain_edges, .timeout = 10)
{
	static const uint64_t addrs[] = {
		0x1000,	 0x10ff,  0x1100,  0x1800,     0x2000,	0x200f,
		0x2010,	 0x3000,  0x0,	   0x10000,    0x10100, 0x1011f,
		0x10120, 0x13fff, 0x14000, UINT64_MAX, 0x1080,
	};
	size_t n = sizeof(addrs) / sizeof(addrs[0]);
	struct query_hit out[sizeof(addrs) / sizeof(addrs[0])];
	struct heap h;
	int64_t a, b, m;

	cr_assert_eq(heap__init(&h), 0);
	a = unit_site(&sites, &h, 0xa, 0);
	b = unit_site(&sites, &h, 0xb, 0);
	m = unit_site(&sites, &h, 0xc, 0);
	cr_assert_eq(heap__alloc(&h, 0x1000, 0x100, a, 1), 0);
	cr_assert_eq(heap__alloc(&h, 0x2000, 0x10, b, 2), 0);
	cr_assert_eq(heap__alloc(&h, 0x3000, 0, b, 3), 0);
	cr_assert_eq(heap__mmap(&h, 0x10000, 0x4000, m, 4), 0);
	cr_assert_eq(heap__alloc(&h, 0x10100, 0x20, a, 5), 0);
	cr_assert_eq(query__contain(&h, addrs, n, out), 0);
	expect_hit(&out[0], QUERY_BLOCK, 0x1000, 0x100, a, addrs[0]);
	expect_hit(&out[1], QUERY_BLOCK, 0x1000, 0x100, a, addrs[1]);
	expect_hit(&out[2], QUERY_NONE, 0, 0, 0, addrs[2]); /* one past */
	expect_hit(&out[3], QUERY_NONE, 0, 0, 0, addrs[3]); /* a gap */
	expect_hit(&out[4], QUERY_BLOCK, 0x2000, 0x10, b, addrs[4]);
	expect_hit(&out[5], QUERY_BLOCK, 0x2000, 0x10, b, addrs[5]);
	expect_hit(&out[6], QUERY_NONE, 0, 0, 0, addrs[6]);
	expect_hit(&out[7], QUERY_NONE, 0, 0, 0, addrs[7]); /* holds nothing */
	expect_hit(&out[8], QUERY_NONE, 0, 0, 0, addrs[8]);
	expect_hit(&out[9], QUERY_MAPPING, 0x10000, 0x4000, m, addrs[9]);
	/* The block inside the mapping is the more precise answer. */
	expect_hit(&out[10], QUERY_BLOCK, 0x10100, 0x20, a, addrs[10]);
	expect_hit(&out[11], QUERY_BLOCK, 0x10100, 0x20, a, addrs[11]);
	expect_hit(&out[12], QUERY_MAPPING, 0x10000, 0x4000, m, addrs[12]);
	expect_hit(&out[13], QUERY_MAPPING, 0x10000, 0x4000, m, addrs[13]);
	expect_hit(&out[14], QUERY_NONE, 0, 0, 0, addrs[14]);
	expect_hit(&out[15], QUERY_NONE, 0, 0, 0, addrs[15]);
	expect_hit(&out[16], QUERY_BLOCK, 0x1000, 0x100, a, addrs[16]);

	/* Freed and unmapped: nothing holds them any more. */
	heap__release(&h, 0x1000);
	cr_assert_eq(heap__munmap(&h, 0x10000, 0x4000), 0);
	cr_assert_eq(query__contain(&h, addrs, n, out), 0);
	expect_hit(&out[0], QUERY_NONE, 0, 0, 0, addrs[0]);
	expect_hit(&out[9], QUERY_NONE, 0, 0, 0, addrs[9]);
	expect_hit(&out[10], QUERY_BLOCK, 0x10100, 0x20, a, addrs[10]);
	expect_hit(&out[13], QUERY_NONE, 0, 0, 0, addrs[13]);
	cr_assert_eq(query__contain(&h, addrs, 0, out), 0);
	heap__free(&h);
}

/* A block whose free was lost overlaps a newer one: the nearest start. */
Test(query, contain_overlap_nearest_start, .timeout = 10)
{
	static const uint64_t addrs[] = { 0x5088, 0x5090, 0x5000, 0x5100 };
	struct query_hit out[4];
	struct heap h;

	cr_assert_eq(heap__init(&h), 0);
	cr_assert_eq(unit_site(&sites, &h, 0xa, 0), 0);
	cr_assert_eq(heap__alloc(&h, 0x5000, 0x100, 0, 1), 0);
	cr_assert_eq(heap__alloc(&h, 0x5080, 0x10, 0, 2), 0);
	cr_assert_eq(query__contain(&h, addrs, 4, out), 0);
	expect_hit(&out[0], QUERY_BLOCK, 0x5080, 0x10, 0, addrs[0]);
	expect_hit(&out[1], QUERY_BLOCK, 0x5000, 0x100, 0, addrs[1]);
	expect_hit(&out[2], QUERY_BLOCK, 0x5000, 0x100, 0, addrs[2]);
	expect_hit(&out[3], QUERY_NONE, 0, 0, 0, addrs[3]);
	heap__free(&h);
}

#define NBLOCKS 20000
#define NADDRS 50000
#define BASE 0x7f0000000000ULL

/*
 * Blocks of 48 bytes every 64 (block i at site i % 7), then a mapping;
 * addresses in any order, with repeats: each answer follows from the
 * arithmetic.
 */
Test(query, contain_many_unsorted, .timeout = 20)
{
	uint64_t *addrs = malloc(NADDRS * sizeof(*addrs)), x = 12345;
	struct query_hit *out = malloc(NADDRS * sizeof(*out));
	uint64_t map = BASE + NBLOCKS * 64ULL + 4096, i;
	struct heap h;

	cr_assert(addrs && out);
	cr_assert_eq(heap__init(&h), 0);
	for (i = 0; i < 7; i++)
		cr_assert_eq(unit_site(&sites, &h, 0x100 + i, 0), (int64_t)i);
	cr_assert_eq(unit_site(&sites, &h, 0x200, 0), 7);
	for (i = 0; i < NBLOCKS; i++)
		cr_assert_eq(heap__alloc(&h, BASE + i * 64, 48, i % 7, i), 0);
	cr_assert_eq(heap__mmap(&h, map, 1 << 20, 7, 0), 0);
	for (i = 0; i < NADDRS; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		addrs[i] = BASE - 64 +
			   (x >> 33) % (NBLOCKS * 64ULL + 8192 + (1 << 20));
	}
	addrs[NADDRS - 1] = addrs[0];
	cr_assert_eq(query__contain(&h, addrs, NADDRS, out), 0);
	for (i = 0; i < NADDRS; i++) {
		uint64_t a = addrs[i], k = (a - BASE) / 64;

		if (a >= map && a < map + (1 << 20))
			expect_hit(&out[i], QUERY_MAPPING, map, 1 << 20, 7, a);
		else if (a >= BASE && k < NBLOCKS && (a - BASE) % 64 < 48)
			expect_hit(&out[i], QUERY_BLOCK, BASE + k * 64, 48,
				   k % 7, a);
		else
			expect_hit(&out[i], QUERY_NONE, 0, 0, 0, a);
	}
	heap__free(&h);
	free(addrs);
	free(out);
}

/* ---- requests ------------------------------------------------------------ */

static int parse(const char *line, struct query_request *req, char *err)
{
	return query__parse(line, strlen(line), req, err, 160);
}

Test(query, parse_good_requests, .timeout = 10)
{
	struct query_request req;
	char err[160];

	cr_assert_eq(parse("{\"op\": \"live\"}\n", &req, err), 0, "%s", err);
	cr_assert_eq(req.op, QUERY_LIVE);
	cr_assert_eq(req.naddrs, 0);
	query__request_free(&req);
	cr_assert_eq(parse("{\"op\": \"cells\"}", &req, err), 0, "%s", err);
	cr_assert_eq(req.op, QUERY_CELLS);
	cr_assert_null(req.addrs);
	query__request_free(&req);
	/* Parsed for a root client; a traced caller's is ignored (answer). */
	cr_assert_eq(parse("{\"op\":\"lookup\",\"pid\":1,\"addrs\":[4096,0,"
			   "140737488355327]}",
			   &req, err),
		     0, "%s", err);
	cr_assert_eq(req.op, QUERY_LOOKUP);
	cr_assert_eq(req.pid, 1);
	cr_assert_eq(req.naddrs, 3);
	cr_assert_eq(req.addrs[0], 4096);
	cr_assert_eq(req.addrs[1], 0);
	cr_assert_eq(req.addrs[2], 0x7fffffffffffULL);
	query__request_free(&req);
	cr_assert_eq(parse("{\"op\": \"lookup\", \"addrs\": []}", &req, err),
		     0);
	cr_assert_eq(req.naddrs, 0);
	query__request_free(&req);
}

/* "pid": a positive int, or absent (0). */
Test(query, parse_pid, .timeout = 10)
{
	struct query_request req;
	char err[160];

	cr_assert_eq(parse("{\"op\": \"live\", \"pid\": 4194304}", &req, err),
		     0, "%s", err);
	cr_assert_eq(req.pid, 4194304);
	query__request_free(&req);
	cr_assert_eq(parse("{\"pid\": 77, \"op\": \"cells\"}", &req, err), 0,
		     "%s", err);
	cr_assert_eq(req.op, QUERY_CELLS);
	cr_assert_eq(req.pid, 77);
	query__request_free(&req);
	cr_assert_eq(parse("{\"op\": \"live\"}", &req, err), 0, "%s", err);
	cr_assert_eq(req.pid, 0);
	query__request_free(&req);
}

static void expect_error(const char *line, const char *want)
{
	struct query_request req;
	char err[160] = "";

	cr_assert_eq(query__parse(line, strlen(line), &req, err, sizeof(err)),
		     -1, "accepted: %s", line);
	cr_assert_not_null(strstr(err, want), "%s: error \"%s\", want \"%s\"",
			   line, err, want);
	cr_assert_null(req.addrs);
}

Test(query, parse_bad_requests, .timeout = 10)
{
	expect_error("", "bad JSON");
	expect_error("{\"op\": \"live\"", "bad JSON");
	expect_error("{\"op\": \"live\", \"op\": \"lookup\"}", "bad JSON");
	expect_error("[\"live\"]", "a request is a JSON object");
	expect_error("{}", "no \"op\"");
	expect_error("{\"op\": 1}", "no \"op\"");
	expect_error("{\"op\": \"peek\"}", "unknown op \"peek\"");
	expect_error("{\"op\": \"lookup\"}", "\"addrs\": a list");
	expect_error("{\"op\": \"lookup\", \"addrs\": 4096}", "\"addrs\": a "
							      "list");
	expect_error("{\"op\": \"lookup\", \"addrs\": [1, 1.5]}", "addrs[1] is "
								  "not a "
								  "non-"
								  "negative "
								  "integer");
	expect_error("{\"op\": \"lookup\", \"addrs\": [\"0x10\"]}", "addrs[0] "
								    "is not");
	expect_error("{\"op\": \"lookup\", \"addrs\": [true]}", "addrs[0] is "
								"not");
	expect_error("{\"op\": \"lookup\", \"addrs\": [null]}", "addrs[0] is "
								"not");
	expect_error("{\"op\": \"lookup\", \"addrs\": [-1]}", "addrs[0] is "
							      "not");
	expect_error("{\"op\": \"lookup\", \"addrs\": [18446744073709551615]}",
		     "bad JSON");
	expect_error("{\"op\": \"live\", \"pid\": -5}", "\"pid\" is not a "
							"positive integer");
	expect_error("{\"op\": \"live\", \"pid\": 0}", "\"pid\" is not");
	expect_error("{\"op\": \"live\", \"pid\": \"12\"}", "\"pid\" is not");
	expect_error("{\"op\": \"live\", \"pid\": 12.0}", "\"pid\" is not");
	expect_error("{\"op\": \"live\", \"pid\": null}", "\"pid\" is not");
	expect_error("{\"op\": \"live\", \"pid\": 4294967297}", "\"pid\" is "
								"not");
	expect_error("{\"op\": \"lookup\", \"pid\": -1, \"addrs\": [1]}", "\"pi"
									  "d\" "
									  "is "
									  "no"
									  "t");
}

/* QUERY_MAX_ADDRS addresses pass; one more is refused. */
static char *addrs_request(size_t n)
{
	char *s = malloc(64 + n * 8), *p = s;
	size_t i;

	cr_assert_not_null(s);
	p += sprintf(p, "{\"op\": \"lookup\", \"addrs\": [");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%zu", i ? "," : "", i * 16);
	sprintf(p, "]}\n");
	return s;
}

Test(query, parse_address_limit, .timeout = 20)
{
	char *ok = addrs_request(QUERY_MAX_ADDRS);
	char *over = addrs_request(QUERY_MAX_ADDRS + 1);
	struct query_request req;
	char err[160];

	cr_assert_eq(parse(ok, &req, err), 0, "%s", err);
	cr_assert_eq(req.naddrs, QUERY_MAX_ADDRS);
	cr_assert_eq(req.addrs[QUERY_MAX_ADDRS - 1],
		     (QUERY_MAX_ADDRS - 1) * 16ULL);
	query__request_free(&req);
	expect_error(over, "too many addresses (200001, at most 200000)");
	free(ok);
	free(over);
}

/* ---- replies ------------------------------------------------------------- */

#define CELL_FILE "/tmp/ipykernel_42/4062188087.py"
#define LIB_FILE "/home/ds/lib/x.py"
#define MOD 0x1111000000000001ULL
#define FN 0x2222000000000001ULL
#define ST_CELL 0xa000000000000001ULL /* f (x.py:12) <- <module> (cell) */
#define ST_SCRIPT 0xa000000000000002ULL /* f (x.py:12) alone */

static void add_code(struct tracee *t, uint64_t id, const char *file,
		     const char *name, int firstlineno)
{
	struct rec_pycode r;

	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = 0x7f0000001000ULL + (id & 0xff) * 0x1000;
	r.firstlineno = firstlineno;
	strncpy(r.filename, file, sizeof(r.filename) - 1);
	strncpy(r.name, name, sizeof(r.name) - 1);
	cr_assert_eq(pystacks__add_code(&t->py, &r), 0);
}

static void add_stack(struct tracee *t, uint64_t id, uint32_t depth,
		      const uint64_t *codes)
{
	struct rec_pystack *r = calloc(1, sizeof(*r));
	uint32_t i;

	cr_assert_not_null(r);
	r->stack_id = id;
	r->depth = depth;
	for (i = 0; i < depth; i++) {
		r->frames[i].code_id = codes[i];
		r->frames[i].lasti = -1;
	}
	cr_assert_eq(pystacks__add_stack(&t->py, r), 0);
	free(r);
}

/* A site noted as events.c notes one: stack, cell run, native frame. */
static int64_t site(struct tracee *t, uint64_t ip, uint64_t stack)
{
	int64_t s = tracee__site(t, ip, stack, NULL, 1);

	cr_assert_geq(s, 0);
	return s;
}

static void start_cell(struct tracee *t, int64_t n)
{
	struct rec_cell m;

	memset(&m, 0, sizeof(m));
	m.execution_count = n;
	m.ts_ns = 1;
	strncpy(m.file, CELL_FILE, sizeof(m.file) - 1);
	strncpy(m.head, "a = f()", sizeof(m.head) - 1);
	cells__marker(&t->cells, &m, t->heap.live_bytes);
}

static void expect_str(json_t *o, const char *key, const char *want)
{
	json_t *v = json_object_get(o, key);

	if (!want) {
		cr_assert(json_is_null(v), "%s: not null", key);
		return;
	}
	cr_assert(json_is_string(v), "%s: not a string", key);
	cr_assert_str_eq(json_string_value(v), want, "%s", key);
}

static void expect_int(json_t *o, const char *key, json_int_t want)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s: not an integer", key);
	cr_assert_eq(json_integer_value(v), want, "%s: %lld, want %lld", key,
		     (long long)json_integer_value(v), (long long)want);
}

/*
 * In [3] calls f (x.py:12) which allocates 1000 bytes; a script-level f
 * maps 1 MiB; a native caller (this file) allocates 64 bytes.
 */
Test(query, replies, .timeout = 10)
{
	static const uint64_t in_cell[] = { FN, MOD }, alone[] = { FN };
	uint64_t ip = (uintptr_t)&memprof_query_target + 3;
	struct tracee *t = tracee__new(getpid(), false);
	struct query_request req = { .op = QUERY_LOOKUP };
	uint64_t addrs[] = { 0x10010, 0x20000, 0x30000, 0x10000 + 1000,
			     0x30000 + (1 << 20) };
	json_t *doc, *blocks, *b;
	int64_t c, s, n;
	char *keys;

	cr_assert_not_null(t);
	add_code(t, MOD, CELL_FILE, "<module>", 1);
	add_code(t, FN, LIB_FILE, "f", 12);
	add_stack(t, ST_CELL, 2, in_cell);
	add_stack(t, ST_SCRIPT, 1, alone);
	start_cell(t, 3);
	c = site(t, 0x401000, ST_CELL);
	s = site(t, 0x402000, ST_SCRIPT);
	n = site(t, ip, 0);
	cr_assert_eq(heap__alloc(&t->heap, 0x10000, 1000, c, 1), 0);
	cr_assert_eq(heap__mmap(&t->heap, 0x30000, 1 << 20, s, 2), 0);
	cr_assert_eq(heap__alloc(&t->heap, 0x20000, 64, n, 3), 0);
	req.addrs = addrs;
	req.naddrs = 5;
	doc = query__lookup_reply(t, &req);
	cr_assert_not_null(doc);
	keys = json_dumps(doc, JSON_COMPACT);
	cr_assert_not_null(strstr(keys, "{\"pid\":"), "%s", keys);
	free(keys);
	expect_int(doc, "pid", getpid());
	expect_int(doc, "live_bytes", 1000 + 64 + (1 << 20));
	blocks = json_object_get(doc, "blocks");
	cr_assert_eq(json_array_size(blocks), 5);

	b = json_array_get(blocks, 0);
	cr_assert_eq(json_object_size(b), 9);
	expect_int(b, "addr", 0x10010);
	expect_int(b, "start", 0x10000);
	expect_int(b, "size", 1000);
	expect_str(b, "kind", "block");
	expect_str(b, "cell", "In [3]");
	expect_str(b, "file", LIB_FILE);
	expect_int(b, "line", 12);
	expect_str(b, "function", "f");
	expect_str(b, "where", "x.py:12 f");

	b = json_array_get(blocks, 1);
	expect_int(b, "start", 0x20000);
	expect_int(b, "size", 64);
	expect_str(b, "kind", "block");
	expect_str(b, "cell", NULL);
	expect_str(b, "file", NULL);
	cr_assert(json_is_null(json_object_get(b, "line")));
	expect_str(b, "function", NULL);
	expect_str(b, "where", "memprof_query_target (test_query)");

	b = json_array_get(blocks, 2);
	expect_int(b, "addr", 0x30000);
	expect_int(b, "start", 0x30000);
	expect_int(b, "size", 1 << 20);
	expect_str(b, "kind", "mapping");
	expect_str(b, "cell", NULL);
	expect_str(b, "where", "x.py:12 f");

	cr_assert(json_is_null(json_array_get(blocks, 3)), "one past the end");
	cr_assert(json_is_null(json_array_get(blocks, 4)), "past the mapping");
	json_decref(doc);

	doc = query__live_reply(t);
	expect_int(doc, "pid", getpid());
	expect_int(doc, "live_bytes", 1049640);
	expect_int(doc, "live_count", 3);
	expect_int(doc, "peak_bytes", 1049640);
	cr_assert_eq(json_object_size(doc), 4);
	json_decref(doc);

	heap__release(&t->heap, 0x10000);
	doc = query__live_reply(t);
	expect_int(doc, "live_bytes", 64 + (1 << 20));
	expect_int(doc, "peak_bytes", 1049640);
	json_decref(doc);
	tracee__delete(t);
	symbolizer__cache_clear();
}

Test(query, error_replies, .timeout = 10)
{
	json_t *e = query__error_reply("not traced", 1234);
	char *text = json_dumps(e, JSON_COMPACT);

	cr_assert_str_eq(text, "{\"error\":\"not traced\",\"pid\":1234}");
	free(text);
	json_decref(e);
	e = query__error_reply("bad JSON: x", 0);
	text = json_dumps(e, JSON_COMPACT);
	cr_assert_str_eq(text, "{\"error\":\"bad JSON: x\"}");
	free(text);
	json_decref(e);
}

/* big_objs() asks about arrays made before attach: the census's blocks. */
Test(query, contain_census_blocks, .timeout = 10)
{
	uint64_t addrs[] = { 0x7f0000000010, 0x7f0000000010 + 999,
			     0x7f0000000010 + 1000, 0x5000, 0x7f0000100010 };
	struct census_block *v = census__alloc_blocks(2);
	struct query_hit out[5];
	struct heap h;
	uint64_t size;
	enum census_kind kind;

	cr_assert_eq(heap__init(&h), 0);
	h.before.site[CENSUS_MMAPPED] = 7;
	v[0] = (struct census_block){ 0x7f0000000010,
				      1000 | ((uint64_t)CENSUS_MMAPPED
					      << CENSUS_KIND_SHIFT) };
	v[1] = (struct census_block){ 0x7f0000100010,
				      64 | ((uint64_t)CENSUS_MMAPPED
					    << CENSUS_KIND_SHIFT) };
	before__adopt(&h.before, v, 2, 2);
	cr_assert(before__take(&h.before, 0x7f0000100010, &size, &kind));
	cr_assert_eq(query__contain(&h, addrs, 5, out), 0);
	cr_assert_eq(out[0].kind, QUERY_BLOCK);
	cr_assert_eq(out[0].start, 0x7f0000000010);
	cr_assert_eq(out[0].size, 1000);
	cr_assert_eq(out[0].site, 7);
	cr_assert_eq(out[1].kind, QUERY_BLOCK, "the last byte is inside");
	cr_assert_eq(out[2].kind, QUERY_NONE, "one past the end is not");
	cr_assert_eq(out[3].kind, QUERY_NONE);
	cr_assert_eq(out[4].kind, QUERY_NONE, "freed since: a tombstone");
	heap__free(&h);
}
