// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include "model/cells.h"
#include "model/heap.h"
#include "model/pystacks.h"
#include "unit.h"

/* Two notebook cells of one ipykernel, a library and the kernel itself. */
#define FILE_A "/tmp/ipykernel_123/4062188087.py"
#define FILE_B "/tmp/ipykernel_123/1234567890.py"
#define LABEL_A "4062188087.py"
#define LABEL_B "1234567890.py"
#define FILE_LIB "/usr/lib/python3/dist-packages/numpy/core/numeric.py"
#define FILE_SHELL "/usr/lib/python3/dist-packages/IPython/core/shell.py"

/*
 * IPython compiles each top-level statement of a cell into a <module> code
 * of its own; first lines rise within one execution of the cell.
 */
#define MOD_A 0x1111000000000001ULL /* cell A, first run, line 1 */
#define MOD_A2 0x1111000000000002ULL /* cell A, re-run, line 1 */
#define MAKE_A 0x1111000000000003ULL /* def make() in cell A, line 2 */
#define MOD_A3 0x1111000000000004ULL /* cell A, first run, line 3 */
#define MOD_A4 0x1111000000000005ULL /* cell A, re-run, line 4 */
#define MOD_B 0x2222000000000001ULL
#define LIB 0x3333000000000001ULL
#define SHELL 0x4444000000000001ULL

#define ADDR_MOD_A 0x7f0000001000ULL
#define ADDR_MOD_A2 0x7f0000002000ULL
#define ADDR_MAKE_A 0x7f0000003000ULL
#define ADDR_MOD_B 0x7f0000004000ULL
#define ADDR_MOD_A3 0x7f0000007000ULL
#define ADDR_MOD_A4 0x7f0000008000ULL

/* Stacks, innermost first as the probe records them. */
#define ST_A 0xa000000000000001ULL /* LIB <- MOD_A <- SHELL */
#define ST_A_MAKE 0xa000000000000002ULL /* LIB <- MAKE_A <- MOD_A <- SHELL */
#define ST_B_MAKE 0xa000000000000003ULL /* LIB <- MAKE_A <- MOD_B <- SHELL */
#define ST_OUT 0xa000000000000004ULL /* LIB <- SHELL */
#define ST_A2 0xa000000000000005ULL /* MOD_A2 <- SHELL */
#define ST_THREAD 0xa000000000000006ULL /* LIB <- MAKE_A: a callback */
#define ST_B 0xa000000000000007ULL /* MOD_B <- SHELL */
#define ST_A3 0xa000000000000008ULL /* LIB <- MOD_A3 <- SHELL */
#define ST_A4 0xa000000000000009ULL /* LIB <- MOD_A4 <- SHELL */
#define ST_UNKNOWN 0xa0000000000000ffULL

static void add_code(struct pystacks *ps, uint64_t id, uint64_t addr,
		     const char *file, const char *name, int firstlineno)
{
	struct rec_pycode r;

	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = addr;
	r.firstlineno = firstlineno;
	strncpy(r.filename, file, sizeof(r.filename) - 1);
	strncpy(r.name, name, sizeof(r.name) - 1);
	cr_assert_eq(pystacks__add_code(ps, &r), 0);
}

static void add_stack(struct pystacks *ps, uint64_t id, uint32_t depth,
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
	cr_assert_eq(pystacks__add_stack(ps, r), 0);
	free(r);
}

/* The codes and stacks above, as the probes would announce them. */
static void notebook(struct pystacks *ps)
{
	static const uint64_t a[] = { LIB, MOD_A, SHELL };
	static const uint64_t a_make[] = { LIB, MAKE_A, MOD_A, SHELL };
	static const uint64_t b_make[] = { LIB, MAKE_A, MOD_B, SHELL };
	static const uint64_t out[] = { LIB, SHELL };
	static const uint64_t a2[] = { MOD_A2, SHELL };
	static const uint64_t thread[] = { LIB, MAKE_A };
	static const uint64_t b[] = { MOD_B, SHELL };
	static const uint64_t a3[] = { LIB, MOD_A3, SHELL };
	static const uint64_t a4[] = { LIB, MOD_A4, SHELL };

	pystacks__init(ps);
	add_code(ps, MOD_A, ADDR_MOD_A, FILE_A, "<module>", 1);
	add_code(ps, MOD_A2, ADDR_MOD_A2, FILE_A, "<module>", 1);
	add_code(ps, MAKE_A, ADDR_MAKE_A, FILE_A, "make", 2);
	add_code(ps, MOD_A3, ADDR_MOD_A3, FILE_A, "<module>", 3);
	add_code(ps, MOD_A4, ADDR_MOD_A4, FILE_A, "<module>", 4);
	add_code(ps, MOD_B, ADDR_MOD_B, FILE_B, "<module>", 1);
	add_code(ps, LIB, 0x7f0000005000ULL, FILE_LIB, "zeros", 10);
	add_code(ps, SHELL, 0x7f0000006000ULL, FILE_SHELL, "run_code", 20);
	add_stack(ps, ST_A, 3, a);
	add_stack(ps, ST_A_MAKE, 4, a_make);
	add_stack(ps, ST_B_MAKE, 4, b_make);
	add_stack(ps, ST_OUT, 2, out);
	add_stack(ps, ST_A2, 2, a2);
	add_stack(ps, ST_THREAD, 2, thread);
	add_stack(ps, ST_B, 2, b);
	add_stack(ps, ST_A3, 3, a3);
	add_stack(ps, ST_A4, 3, a4);
}

static struct rec_cell marker(bool done, int64_t n, const char *file,
			      const char *head, bool success, uint64_t ts)
{
	struct rec_cell m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = REC_CELL;
	m.done = done;
	m.execution_count = n;
	m.success = success;
	m.ts_ns = ts;
	strncpy(m.file, file, sizeof(m.file) - 1);
	strncpy(m.head, head, sizeof(m.head) - 1);
	return m;
}

static void start(struct cells *c, int64_t n, const char *file,
		  const char *head, uint64_t ts, uint64_t live)
{
	struct rec_cell m = marker(false, n, file, head, false, ts);

	cells__marker(c, &m, live);
}

static void end(struct cells *c, int64_t n, const char *file, const char *head,
		bool success, uint64_t ts, uint64_t live)
{
	struct rec_cell m = marker(true, n, file, head, success, ts);

	cells__marker(c, &m, live);
}

/*
 * The sites of the test: their descriptions keep the runs the cells
 * decide (model/site.h). Each test runs in its own process.
 */
static struct sites sites, dsites;

/*
 * Site `site` noted as tracee__new_site notes a new one: the registry
 * hands out ids in order (ids passed on the way are described too, their
 * run outside cells), a new site's run is decided once by the cells, and
 * its description keeps it. A known site answers with its kept run.
 */
static int32_t note_site(struct cells *c, struct sites *s, size_t site,
			 const struct pystacks *ps, uint64_t stack,
			 uint64_t now, uint64_t live)
{
	if (!s->registry.slots)
		cr_assert_eq(sites__init(s), 0);
	if (site < s->n)
		return s->v[site].run;
	while (s->n <= site)
		cr_assert_geq(sites__lookup_or_add(s, 0x400000 + s->n, stack,
						   NULL),
			      0);
	s->v[site].run = cells__run_of(c, ps, stack, now, live);
	return s->v[site].run;
}

/* A site the cells never heard of: its bytes count as outside. */
static int64_t bare_site(struct heap *h, uint64_t key, uint64_t stack)
{
	int64_t s = unit_site(&sites, h, key, stack);

	cr_assert_geq(s, 0);
	return s;
}

/* A new heap site with its Python stack, noted as events.c does. */
static int64_t new_site(struct heap *h, struct cells *c,
			const struct pystacks *ps, uint64_t key, uint64_t stack,
			uint64_t now)
{
	int64_t s = bare_site(h, key, stack);

	sites.v[s].run = cells__run_of(c, ps, stack, now, h->live_bytes);
	return s;
}

/*
 * An allocation as events.c makes it: heap first, then the cells, told
 * the site's run and whether this event raised the high-water mark.
 */
static void alloc(struct heap *h, struct cells *c, int64_t site, uint64_t addr,
		  uint64_t size, uint64_t now)
{
	uint64_t before = h->peak_bytes;

	cr_assert_eq(heap__alloc(h, addr, size, site, now), 0);
	cells__on_alloc(c, sites.v[site].run, h->live_bytes,
			h->peak_bytes > before);
}

static void expect_totals(const struct cell_totals *t, int64_t live_bytes,
			  int64_t live_count, int64_t peak_bytes,
			  int64_t peak_count, uint64_t allocs, const char *what)
{
	cr_assert_eq(t->live_bytes, live_bytes,
		     "%s: live_bytes %lld, want %lld", what,
		     (long long)t->live_bytes, (long long)live_bytes);
	cr_assert_eq(t->live_count, live_count,
		     "%s: live_count %lld, want %lld", what,
		     (long long)t->live_count, (long long)live_count);
	cr_assert_eq(t->peak_bytes, peak_bytes,
		     "%s: peak_bytes %lld, want %lld", what,
		     (long long)t->peak_bytes, (long long)peak_bytes);
	cr_assert_eq(t->peak_count, peak_count,
		     "%s: peak_count %lld, want %lld", what,
		     (long long)t->peak_count, (long long)peak_count);
	cr_assert_eq(t->allocs, allocs, "%s: allocs %llu, want %llu", what,
		     (unsigned long long)t->allocs, (unsigned long long)allocs);
}

Test(cells, is_cell_file, .timeout = 10)
{
	cr_assert(cells__is_cell_file("/tmp/ipykernel_123/4062188087.py"));
	cr_assert(cells__is_cell_file("/var/tmp/ipykernel_7/0.py"));
	cr_assert(cells__is_cell_file("<ipython-input-3-abcdef012345>"));
	/* The base name is digits, nothing else. */
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_123/notes.py"));
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_123/40621x8087.py"));
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_123/4062188087.pyc"));
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_123/4062188087"));
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_1/.py"), "no digits");
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_1/12.34.py"));
	cr_assert_not(cells__is_cell_file("/tmp/ipykernel_123"));
	cr_assert_not(cells__is_cell_file("/home/u/x.py"));
	cr_assert_not(cells__is_cell_file("/home/u/4062188087.py"));
	cr_assert_not(cells__is_cell_file("<ipython-input"));
	cr_assert_not(cells__is_cell_file("<string>"));
	cr_assert_not(cells__is_cell_file(""));
	cr_assert_not(cells__is_cell_file(NULL));
}

Test(cells, init_and_free, .timeout = 10)
{
	struct cells c;

	cells__init(&c);
	cr_assert_eq(sites__init(&sites), 0);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(sites.n, 0);
	cr_assert_eq(c.current, -1);
	cr_assert_eq(c.peak_run, -1);
	cells__free(&c);
	cells__free(&c); /* idempotent */
	cr_assert_eq(c.current, -1);
	cr_assert_null(c.runs);
}

Test(cells, outermost_cell_frame_decides_the_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_str_eq(c.runs[0].file, FILE_A);
	cr_assert_str_eq(c.runs[0].label, LABEL_A);
	cr_assert_eq(c.runs[0].execution_count, -1);
	cr_assert_null(c.runs[0].head);
	cr_assert_eq(c.runs[0].code_id, MOD_A);
	cr_assert_eq(c.runs[0].code_addr, ADDR_MOD_A);
	cr_assert_eq(c.runs[0].started_ns, 100);
	cr_assert_eq(c.runs[0].finished_ns, 0);
	cr_assert_not(c.runs[0].marked);

	/* make() of cell A called from cell B's <module>: B's run. */
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_B_MAKE, 200, 500), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.runs[1].file, FILE_B);
	cr_assert_str_eq(c.runs[1].label, LABEL_B);
	cr_assert_eq(c.runs[1].code_id, MOD_B);
	cr_assert_eq(c.runs[1].code_addr, ADDR_MOD_B);
	cr_assert_eq(c.runs[1].started_ns, 200);
	cr_assert_eq(c.runs[1].start_live, 500);
	cr_assert_eq(c.runs[1].max_live, 500);

	/* No cell frame, no stack, an unknown stack: outside. */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_OUT, 300, 0),
		     CELL_OUTSIDE);
	cr_assert_eq(note_site(&c, &sites, 3, &ps, 0, 300, 0), CELL_OUTSIDE);
	cr_assert_eq(note_site(&c, &sites, 4, &ps, ST_UNKNOWN, 300, 0),
		     CELL_OUTSIDE);
	cr_assert_eq(c.n, 2);

	/* make() called from A's own <module>: the same code id, one run. */
	cr_assert_eq(note_site(&c, &sites, 5, &ps, ST_A_MAKE, 400, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 6, &ps, ST_A, 400, 0), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(sites.n, 7);
	cr_assert_eq(sites.v[0].run, 0);
	cr_assert_eq(sites.v[1].run, 1);
	cr_assert_eq(sites.v[2].run, CELL_OUTSIDE);
	cr_assert_eq(sites.v[5].run, 0);

	/* A site's run is decided once. */
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_OUT, 500, 0), 1);
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A, 500, 0), CELL_OUTSIDE);
	cr_assert_eq(sites.n, 7);
	cr_assert_eq(c.current, -1, "no allocation yet");
	cells__free(&c);
	pystacks__free(&ps);
}

/*
 * Without markers: a <module> code of the file whose first line does not
 * rise above the last one seen (line 1, then line 1 again) is the same
 * source executed again, a new run.
 */
Test(cells, rerun_of_the_same_source_is_a_new_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(c.runs[0].last_line, 1);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A2, 200, 0), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.runs[1].file, FILE_A);
	cr_assert_str_eq(c.runs[1].label, LABEL_A);
	cr_assert_eq(c.runs[0].code_id, MOD_A);
	cr_assert_eq(c.runs[1].code_id, MOD_A2);
	cr_assert_eq(c.runs[1].code_addr, ADDR_MOD_A2);
	cr_assert_eq(c.runs[1].last_line, 1);
	cr_assert_eq(c.runs[1].started_ns, 200);
	/* The first run's code still maps to the first run. */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A_MAKE, 300, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 3, &ps, ST_A2, 300, 0), 1);
	cr_assert_eq(c.n, 2);
	cells__free(&c);
	pystacks__free(&ps);
}

/* (a) Without markers: statements at lines 1 then 3 are one execution. */
Test(cells, rising_statements_of_a_file_are_one_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A3, 200, 50), 0);
	cr_assert_eq(c.n, 1, "one run, not one per statement");
	cr_assert_str_eq(c.runs[0].label, LABEL_A);
	cr_assert_eq(c.runs[0].code_id, MOD_A3, "its latest <module> code");
	cr_assert_eq(c.runs[0].code_addr, ADDR_MOD_A3);
	cr_assert_eq(c.runs[0].last_line, 3);
	cr_assert_eq(c.runs[0].started_ns, 100, "started by its first code");
	cr_assert_eq(c.runs[0].start_live, 0);
	/* A function of the cell reached without its <module>: that run. */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_THREAD, 300, 0), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(sites.n, 3);
	/* Another cell's statement does not join it. */
	cr_assert_eq(note_site(&c, &sites, 3, &ps, ST_B, 400, 0), 1);
	cr_assert_eq(c.n, 2);
	cells__free(&c);
	pystacks__free(&ps);
}

/*
 * (b) Without markers: lines 1 and 3, then line 1 again is a re-run: two
 * runs. The re-run's own later statement (line 4) rises again and joins it.
 */
Test(cells, first_line_falling_back_starts_a_rerun, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A3, 200, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A2, 300, 10), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.runs[1].file, FILE_A);
	cr_assert_str_eq(c.runs[1].label, LABEL_A);
	cr_assert_eq(c.runs[1].code_id, MOD_A2);
	cr_assert_eq(c.runs[1].last_line, 1);
	cr_assert_eq(c.runs[1].started_ns, 300);
	cr_assert_eq(c.runs[1].start_live, 10);
	cr_assert_eq(c.runs[0].code_id, MOD_A3, "the first run is untouched");
	cr_assert_eq(c.runs[0].last_line, 3);
	cr_assert_eq(note_site(&c, &sites, 3, &ps, ST_A4, 400, 0), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.runs[1].code_id, MOD_A4);
	cr_assert_eq(c.runs[1].last_line, 4);
	/* A function of the cell without its <module>: the newest run. */
	cr_assert_eq(note_site(&c, &sites, 4, &ps, ST_THREAD, 500, 0), 1);
	cr_assert_eq(sites.v[0].run, 0);
	cr_assert_eq(sites.v[1].run, 0);
	cr_assert_eq(sites.v[2].run, 1);
	cr_assert_eq(sites.v[3].run, 1);
	cells__free(&c);
	pystacks__free(&ps);
}

/* A 3.11 location table: every instruction on firstlineno + delta. */
static void one_line_table(struct pystacks *ps, uint64_t id, int delta)
{
	/* One-line form, code 10 + delta, 8 code units, columns 0..4. */
	uint8_t *t = malloc(3);

	cr_assert_not_null(t);
	t[0] = 0x80 | ((10 + delta) << 3) | 7;
	t[1] = 0;
	t[2] = 4;
	pystacks__set_table(ps, id, t, 3);
}

/*
 * What CPython really compiles: every statement's <module> code says
 * co_firstlineno 1 (measured on 3.11); only its line table knows the
 * statement's line. Lines 1 and 3 of one execution are one run; line 1
 * again is a re-run.
 */
Test(cells, statements_are_told_apart_by_their_running_line, .timeout = 10)
{
	static const uint64_t s1[] = { LIB, MOD_A, SHELL };
	static const uint64_t s3[] = { LIB, MOD_A3, SHELL };
	static const uint64_t again[] = { LIB, MOD_A2, SHELL };
	const uint64_t *stacks[] = { s1, s3, again };
	struct pystacks ps;
	struct cells c;
	int i;

	pystacks__init(&ps);
	ps.minor = 11;
	add_code(&ps, MOD_A, ADDR_MOD_A, FILE_A, "<module>", 1);
	add_code(&ps, MOD_A3, ADDR_MOD_A3, FILE_A, "<module>", 1);
	add_code(&ps, MOD_A2, ADDR_MOD_A2, FILE_A, "<module>", 1);
	add_code(&ps, LIB, 0x7f0000005000ULL, FILE_LIB, "zeros", 10);
	add_code(&ps, SHELL, 0x7f0000006000ULL, FILE_SHELL, "run_code", 20);
	one_line_table(&ps, MOD_A, 0);
	one_line_table(&ps, MOD_A3, 2);
	one_line_table(&ps, MOD_A2, 0);
	for (i = 0; i < 3; i++) {
		struct rec_pystack *r = calloc(1, sizeof(*r));

		cr_assert_not_null(r);
		r->stack_id = ST_A + i;
		r->depth = 3;
		for (int k = 0; k < 3; k++) {
			r->frames[k].code_id = stacks[i][k];
			r->frames[k].lasti = k == 1 ? 2 : -1;
		}
		cr_assert_eq(pystacks__add_stack(&ps, r), 0);
		free(r);
	}
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(c.runs[0].last_line, 1);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A + 1, 200, 0), 0,
		     "line 3 after line 1: the same run");
	cr_assert_eq(c.runs[0].last_line, 3);
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A + 2, 300, 0), 1,
		     "line 1 again: a re-run");
	cr_assert_eq(c.n, 2);
	cells__free(&c);
	pystacks__free(&ps);
}

/*
 * (c) With markers: every <module> code of the file while its marked run
 * is open belongs to it, whatever its first line; after the end marker a
 * new <module> code of the file starts a new, unmarked run.
 */
Test(cells, statements_under_an_open_marked_run_belong_to_it, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	start(&c, 5, FILE_A, "x = 1", 1000, 0);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 1100, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A3, 1200, 0), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_str_eq(c.runs[0].label, "In [5]");
	cr_assert(c.runs[0].marked);
	cr_assert_eq(c.runs[0].code_id, MOD_A3);
	cr_assert_eq(c.runs[0].last_line, 3);
	/* Not rising, but the marked run is still open: the same run. */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A2, 1300, 0), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.runs[0].code_id, MOD_A2);
	cr_assert_eq(c.runs[0].last_line, 1);
	cr_assert_eq(c.current, 0);
	end(&c, 5, FILE_A, "", true, 2000, 0);
	cr_assert_eq(c.runs[0].finished_ns, 2000);
	cr_assert_eq(c.current, -1);

	/* Closed: line 4 rises above its last line, yet starts a new run. */
	cr_assert_eq(note_site(&c, &sites, 3, &ps, ST_A4, 3000, 0), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_not(c.runs[1].marked);
	cr_assert_str_eq(c.runs[1].label, LABEL_A);
	cr_assert_eq(c.runs[1].execution_count, -1);
	cr_assert_eq(c.runs[1].code_id, MOD_A4);
	cr_assert_eq(c.runs[1].started_ns, 3000);
	cr_assert_eq(c.runs[1].finished_ns, 0);
	cr_assert_eq(c.runs[0].code_id, MOD_A2, "the marked run keeps its own");
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, function_without_its_module_goes_to_the_newest_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	/* Cell A, then its re-run (line 1 again): make() on a thread. */
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A2, 200, 0), 1);
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_THREAD, 300, 0), 1);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.runs[1].code_id, MOD_A2, "not claimed by make()");
	cells__free(&c);

	/* No run of its file yet: a run of its own, tied to no code. */
	cells__init(&c);
	cr_assert_eq(sites__reset(&sites), 0); /* as an exec forgets both */
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_THREAD, 100, 7), 0);
	cr_assert_eq(c.n, 1);
	cr_assert_str_eq(c.runs[0].file, FILE_A);
	cr_assert_str_eq(c.runs[0].label, LABEL_A);
	cr_assert_eq(c.runs[0].code_id, 0);
	cr_assert_eq(c.runs[0].code_addr, 0);
	cr_assert_eq(c.runs[0].start_live, 7);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, sites_skipped_are_outside, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;
	size_t i;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 5, &ps, ST_A, 100, 0), 0);
	cr_assert_eq(sites.n, 6);
	for (i = 0; i < 5; i++)
		cr_assert_eq(sites.v[i].run, CELL_OUTSIDE, "site %zu", i);
	cr_assert_eq(sites.v[5].run, 0);
	/* Far past the first allocation of the site map. */
	cr_assert_eq(note_site(&c, &sites, 5000, &ps, ST_B, 200, 0), 1);
	cr_assert_eq(sites.n, 5001);
	cr_assert_geq(sites.cap, 5001);
	cr_assert_eq(sites.v[4999].run, CELL_OUTSIDE);
	cr_assert_eq(sites.v[5000].run, 1);
	cr_assert_eq(sites.v[5].run, 0);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, start_marker_then_site_adopts_the_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	start(&c, 3, FILE_A, "x = 1", 1000, 4096);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.current, 0);
	cr_assert(c.runs[0].marked);
	cr_assert_str_eq(c.runs[0].label, "In [3]");
	cr_assert_eq(c.runs[0].execution_count, 3);
	cr_assert_str_eq(c.runs[0].head, "x = 1");
	cr_assert_str_eq(c.runs[0].file, FILE_A);
	cr_assert_eq(c.runs[0].code_id, 0);
	cr_assert_eq(c.runs[0].started_ns, 1000);
	cr_assert_eq(c.runs[0].start_live, 4096);
	cr_assert_eq(c.runs[0].max_live, 4096);

	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 1500, 5000), 0);
	cr_assert_eq(c.n, 1, "adopted, not a new run");
	cr_assert_eq(c.runs[0].code_id, MOD_A);
	cr_assert_eq(c.runs[0].code_addr, ADDR_MOD_A);
	cr_assert_str_eq(c.runs[0].label, "In [3]");
	cr_assert_eq(c.runs[0].started_ns, 1000);
	cr_assert_eq(c.runs[0].start_live, 4096);

	/* The end: finished and successful; the head stays. */
	end(&c, 3, FILE_A, "", true, 3000, 6000);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.current, -1);
	cr_assert_eq(c.runs[0].finished_ns, 3000);
	cr_assert(c.runs[0].success);
	cr_assert_str_eq(c.runs[0].head, "x = 1");

	/* Run again: a second marked run takes the new <module>. */
	start(&c, 4, FILE_A, "x = 1", 4000, 6000);
	cr_assert_eq(c.current, 1);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A2, 4100, 6000), 1);
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A_MAKE, 4100, 6000), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.runs[1].label, "In [4]");
	cr_assert_eq(c.runs[1].code_id, MOD_A2);
	end(&c, 4, FILE_A, "", false, 5000, 6000);
	cr_assert_eq(c.runs[1].finished_ns, 5000);
	cr_assert_not(c.runs[1].success);
	cr_assert_eq(c.runs[0].finished_ns, 3000);
	cr_assert_eq(c.current, -1);
	cells__free(&c);
	pystacks__free(&ps);
}

/* A front end that names its cells freely: the marker makes it a cell. */
Test(cells, marked_file_is_a_cell_file, .timeout = 10)
{
	static const uint64_t st[] = { LIB, 0x5555000000000001ULL, SHELL };
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	add_code(&ps, 0x5555000000000001ULL, 0x7f0000009000ULL,
		 "/home/u/cell-7", "<module>", 1);
	add_stack(&ps, 0xb000000000000001ULL, 3, st);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, 0xb000000000000001ULL, 10,
			       0),
		     CELL_OUTSIDE, "unknown file, no marker yet");
	start(&c, 7, "/home/u/cell-7", "y = 2", 100, 0);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, 0xb000000000000001ULL, 200,
			       0),
		     0);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.runs[0].code_id, 0x5555000000000001ULL);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, end_without_start_adopts_the_unmarked_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cells__on_alloc(&c, sites.v[0].run, 64, true);
	cr_assert_eq(c.current, 0);
	end(&c, 7, FILE_A, "y = 2", false, 5000, 64);
	cr_assert_eq(c.n, 1);
	cr_assert(c.runs[0].marked);
	cr_assert_str_eq(c.runs[0].label, "In [7]");
	cr_assert_eq(c.runs[0].execution_count, 7);
	cr_assert_str_eq(c.runs[0].head, "y = 2");
	cr_assert_eq(c.runs[0].code_id, MOD_A);
	cr_assert_eq(c.runs[0].started_ns, 100);
	cr_assert_eq(c.runs[0].finished_ns, 5000);
	cr_assert_not(c.runs[0].success);
	cr_assert_eq(c.current, -1);

	/* No run of the file at all: an empty run of its own. */
	end(&c, 8, FILE_B, "pass", true, 6000, 64);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.runs[1].label, "In [8]");
	cr_assert_str_eq(c.runs[1].file, FILE_B);
	cr_assert_eq(c.runs[1].started_ns, 6000);
	cr_assert_eq(c.runs[1].finished_ns, 6000);
	cr_assert(c.runs[1].success);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, marker_without_file_is_ignored, .timeout = 10)
{
	struct cells c;

	cells__init(&c);
	start(&c, 3, "", "x = 1", 1000, 0);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(c.current, -1);
	start(&c, 3, FILE_A, "x = 1", 1000, 0);
	cr_assert_eq(c.current, 0);
	end(&c, 3, "", "x = 1", true, 2000, 0);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.current, 0, "still running");
	cr_assert_eq(c.runs[0].finished_ns, 0);
	cells__free(&c);
}

Test(cells, code_freed_finishes_unmarked_runs_only, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_A, 100, 0), 0);
	cells__on_alloc(&c, sites.v[0].run, 10, true);
	cr_assert_eq(c.current, 0);
	cells__code_freed(&c, 0x7fffdead0000ULL, 150);
	cr_assert_eq(c.runs[0].finished_ns, 0, "not its code");
	cells__code_freed(&c, ADDR_MOD_A, 900);
	cr_assert_eq(c.runs[0].finished_ns, 900);
	cr_assert_eq(c.current, -1);
	/* Finished once: a later free of that address changes nothing. */
	cells__code_freed(&c, ADDR_MOD_A, 950);
	cr_assert_eq(c.runs[0].finished_ns, 900);
	/* An allocation at a finished run's site does not revive it. */
	cells__on_alloc(&c, sites.v[0].run, 20, true);
	cr_assert_eq(c.current, -1);

	/* A marked run ends with its end marker, not its code. */
	start(&c, 3, FILE_B, "b = []", 1000, 20);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_B, 1100, 20), 1);
	cr_assert_eq(c.runs[1].code_addr, ADDR_MOD_B);
	cells__code_freed(&c, ADDR_MOD_B, 1200);
	cr_assert_eq(c.runs[1].finished_ns, 0);
	cr_assert_eq(c.current, 1);

	/* A free stamped before the run's start ends it at its start. */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_A2, 2000, 20), 2);
	cells__code_freed(&c, ADDR_MOD_A2, 1500);
	cr_assert_eq(c.runs[2].finished_ns, 2000);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, on_alloc_follows_the_running_run, .timeout = 10)
{
	struct pystacks ps;
	struct cells c;

	notebook(&ps);
	cells__init(&c);
	/* A high-water mark before any cell: reached outside. */
	cr_assert_eq(note_site(&c, &sites, 0, &ps, ST_OUT, 10, 0),
		     CELL_OUTSIDE);
	cells__on_alloc(&c, sites.v[0].run, 100, true);
	cr_assert_eq(c.current, -1);
	cr_assert_eq(c.peak_run, -1);

	start(&c, 3, FILE_A, "a = make()", 1000, 100);
	cr_assert_eq(note_site(&c, &sites, 1, &ps, ST_A_MAKE, 1100, 100), 0);
	cells__on_alloc(&c, sites.v[1].run, 300, true);
	cr_assert_eq(c.runs[0].max_live, 300);
	cr_assert_eq(c.peak_run, 0);
	/* Lower than its high: the high stays. */
	cells__on_alloc(&c, sites.v[1].run, 250, false);
	cr_assert_eq(c.runs[0].max_live, 300);
	/* Outside allocations while a marked cell runs are its level too. */
	cells__on_alloc(&c, sites.v[0].run, 320, true);
	cr_assert_eq(c.runs[0].max_live, 320);
	cr_assert_eq(c.peak_run, 0);
	end(&c, 3, FILE_A, "", true, 2000, 320);
	cr_assert_eq(c.current, -1);

	/* After the end nothing moves run 0; a new mark is outside. */
	cells__on_alloc(&c, sites.v[0].run, 200, false);
	cr_assert_eq(c.peak_run, 0, "no new high-water mark");
	cells__on_alloc(&c, sites.v[0].run, 400, true);
	cr_assert_eq(c.runs[0].max_live, 320);
	cr_assert_eq(c.runs[0].start_live, 100);
	cr_assert_eq(c.peak_run, -1);

	/* Unmarked: the run allocating becomes the running one... */
	cr_assert_eq(note_site(&c, &sites, 2, &ps, ST_B, 3000, 400), 1);
	cells__on_alloc(&c, sites.v[2].run, 500, true);
	cr_assert_eq(c.current, 1);
	cr_assert_eq(c.peak_run, 1);
	cr_assert_eq(c.runs[1].start_live, 400);
	cr_assert_eq(c.runs[1].max_live, 500);
	/* ...and stays so until its code object dies. */
	cells__on_alloc(&c, sites.v[0].run, 600, true);
	cr_assert_eq(c.runs[1].max_live, 600);
	cr_assert_eq(c.peak_run, 1);
	cells__code_freed(&c, ADDR_MOD_B, 4000);
	cells__on_alloc(&c, sites.v[0].run, 700, true);
	cr_assert_eq(c.peak_run, -1);
	cr_assert_eq(c.runs[1].max_live, 600);
	cr_assert_eq(c.runs[0].max_live, 320);
	cells__free(&c);
	pystacks__free(&ps);
}

/*
 * Run A allocates 100 then 50 at two sites, outside code 30, run B 1000
 * freed before the end, then A 20 more after the peak.
 */
Test(cells, totals_with_a_real_heap, .timeout = 10)
{
	struct cell_totals t[3];
	struct pystacks ps;
	struct cells c;
	struct heap h;
	int64_t a1, a2, out, b, late;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(heap__init(&h), 0);
	start(&c, 1, FILE_A, "a = make()", 100, 0);
	a1 = new_site(&h, &c, &ps, 0x401000, ST_A, 110);
	alloc(&h, &c, a1, 0x1000, 100, 110);
	a2 = new_site(&h, &c, &ps, 0x402000, ST_A_MAKE, 120);
	alloc(&h, &c, a2, 0x2000, 50, 120);
	end(&c, 1, FILE_A, "", true, 130, h.live_bytes);
	out = new_site(&h, &c, &ps, 0x403000, ST_OUT, 140);
	alloc(&h, &c, out, 0x3000, 30, 140);
	start(&c, 2, FILE_B, "b = make()", 200, h.live_bytes);
	b = new_site(&h, &c, &ps, 0x404000, ST_B_MAKE, 210);
	alloc(&h, &c, b, 0x4000, 1000, 210);
	cr_assert_eq(h.peak_bytes, 1180);
	cr_assert_eq(heap__release(&h, 0x4000), 1000);
	end(&c, 2, FILE_B, "", true, 220, h.live_bytes);
	alloc(&h, &c, a1, 0x5000, 20, 230);
	/* A heap site the cells never heard of counts as outside. */
	late = bare_site(&h, 0x405000, 0);
	cr_assert_eq(heap__alloc(&h, 0x6000, 5, late, 240), 0);

	cr_assert_eq(c.n, 2);
	cr_assert_eq(sites.v[a1].run, 0);
	cr_assert_eq(sites.v[a2].run, 0);
	cr_assert_eq(sites.v[out].run, CELL_OUTSIDE);
	cr_assert_eq(sites.v[b].run, 1);
	cr_assert_eq(c.peak_run, 1);
	cr_assert_eq(c.runs[0].max_live, 150);
	cr_assert_eq(c.runs[1].start_live, 180);
	cr_assert_eq(c.runs[1].max_live, 1180);

	heap__settle_peak(&h);
	memset(t, 0xa5, sizeof(t));
	cells__totals(&c, &sites, &h, t);
	expect_totals(&t[0], 170, 3, 150, 2, 3, "run A");
	expect_totals(&t[1], 0, 0, 1000, 1, 1, "run B");
	expect_totals(&t[2], 35, 2, 30, 1, 2, "outside");
	cr_assert_eq(t[0].live_bytes + t[1].live_bytes + t[2].live_bytes,
		     (int64_t)h.live_bytes);
	cr_assert_eq(t[0].peak_bytes + t[1].peak_bytes + t[2].peak_bytes,
		     (int64_t)h.peak_bytes);
	heap__free(&h);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, totals_without_runs, .timeout = 10)
{
	struct cell_totals t[1];
	struct cells c;
	struct heap h;
	int64_t s;

	cells__init(&c);
	cr_assert_eq(heap__init(&h), 0);
	s = bare_site(&h, 0x401000, 0);
	cr_assert_eq(heap__alloc(&h, 0x1000, 64, s, 1), 0);
	heap__settle_peak(&h);
	memset(t, 0xa5, sizeof(t));
	cells__totals(&c, &sites, &h, t);
	expect_totals(&t[0], 64, 1, 64, 1, 1, "outside");
	heap__free(&h);
	cells__free(&c);
}

/*
 * A later run that merely returns to the old high-water mark does not
 * raise it: the heap keeps its first peak (peak_at_ns, per-site
 * breakdown: all of it run A's), so the peak stays reached in run A.
 */
Test(cells, equal_level_is_not_a_new_high_water_mark, .timeout = 10)
{
	struct cell_totals t[3];
	struct pystacks ps;
	struct cells c;
	struct heap h;
	int64_t a, b;

	notebook(&ps);
	cells__init(&c);
	cr_assert_eq(heap__init(&h), 0);
	start(&c, 1, FILE_A, "a = make()", 100, 0);
	a = new_site(&h, &c, &ps, 0x401000, ST_A, 110);
	alloc(&h, &c, a, 0x1000, 100, 110);
	cr_assert_eq(heap__release(&h, 0x1000), 100);
	end(&c, 1, FILE_A, "", true, 120, 0);
	cr_assert_eq(c.peak_run, 0);

	start(&c, 2, FILE_B, "b = make()", 200, 0);
	b = new_site(&h, &c, &ps, 0x402000, ST_B, 210);
	alloc(&h, &c, b, 0x2000, 100, 210);
	cr_assert_eq(h.peak_bytes, 100);
	cr_assert_eq(h.peak_at_ns, 110, "the heap keeps the first peak");
	heap__settle_peak(&h);
	cells__totals(&c, &sites, &h, t);
	cr_assert_eq(t[0].peak_bytes, 100);
	cr_assert_eq(t[1].peak_bytes, 0);
	cr_assert_eq(c.peak_run, 0,
		     "peak_run %lld: run B only returned to run A's mark",
		     (long long)c.peak_run);
	heap__free(&h);
	cells__free(&c);
	pystacks__free(&ps);
}

Test(cells, clone_is_deep, .timeout = 10)
{
	struct pystacks ps;
	struct cells src, dst;

	notebook(&ps);
	cells__init(&src);
	start(&src, 3, FILE_A, "x = 1", 1000, 64);
	cr_assert_eq(note_site(&src, &sites, 0, &ps, ST_A, 1100, 64), 0);
	end(&src, 3, FILE_A, "", true, 2000, 128);
	cr_assert_eq(note_site(&src, &sites, 1, &ps, ST_OUT, 2100, 128),
		     CELL_OUTSIDE);
	cr_assert_eq(note_site(&src, &sites, 2, &ps, ST_B, 3000, 128), 1);
	cells__on_alloc(&src, sites.v[2].run, 256, true);

	/* A fork clones both: the runs and the sites that name them. */
	cr_assert_eq(cells__clone(&dst, &src), 0);
	cr_assert_eq(sites__clone(&dsites, &sites), 0);
	cr_assert_eq(dst.n, 2);
	cr_assert_eq(dsites.n, 3);
	cr_assert_neq(dst.runs, src.runs);
	cr_assert_neq(dsites.v, sites.v);
	cr_assert_eq(dsites.v[0].run, 0);
	cr_assert_eq(dsites.v[1].run, CELL_OUTSIDE);
	cr_assert_eq(dsites.v[2].run, 1);
	cr_assert_neq(dst.runs[0].file, src.runs[0].file);
	cr_assert_neq(dst.runs[0].head, src.runs[0].head);
	cr_assert_null(dst.runs[1].head);
	cr_assert_str_eq(dst.runs[0].label, "In [3]");
	cr_assert_eq(dst.runs[0].code_id, MOD_A);
	cr_assert_eq(dst.runs[0].finished_ns, 2000);
	cr_assert_eq(dst.runs[0].start_live, 64);
	cr_assert(dst.runs[0].marked);
	cr_assert_str_eq(dst.runs[1].label, LABEL_B);
	cr_assert_eq(dst.runs[1].max_live, 256);
	/* The run executing and the one at the high-water mark carry over. */
	cr_assert_eq(src.current, 1);
	cr_assert_eq(src.peak_run, 1);
	cr_assert_eq(dst.current, 1);
	cr_assert_eq(dst.peak_run, 1);

	/* Scribble over the source and free it: the clone is intact. */
	src.runs[0].file[0] = 'X';
	src.runs[0].head[0] = 'X';
	sites.v[0].run = 1;
	cells__free(&src);
	sites__free(&sites);
	cr_assert_str_eq(dst.runs[0].file, FILE_A);
	cr_assert_str_eq(dst.runs[0].head, "x = 1");
	cr_assert_str_eq(dst.runs[1].file, FILE_B);
	cr_assert_eq(dsites.v[0].run, 0);

	/* And the clone grows on its own. */
	cr_assert_eq(note_site(&dst, &dsites, 3, &ps, ST_A2, 4000, 0), 2);
	cr_assert_eq(note_site(&dst, &dsites, 4, &ps, ST_A, 4000, 0), 0);
	cr_assert_eq(dst.n, 3);
	cells__free(&dst);
	sites__free(&dsites);
	pystacks__free(&ps);
}

Test(cells, clone_of_empty, .timeout = 10)
{
	struct pystacks ps;
	struct cells src, dst;

	notebook(&ps);
	cells__init(&src);
	cr_assert_eq(sites__init(&sites), 0);
	cr_assert_eq(cells__clone(&dst, &src), 0);
	cr_assert_eq(sites__clone(&dsites, &sites), 0);
	cr_assert_eq(dst.n, 0);
	cr_assert_eq(dsites.n, 0);
	cr_assert_eq(dst.current, -1);
	cr_assert_eq(dst.peak_run, -1);
	cr_assert_eq(note_site(&dst, &dsites, 0, &ps, ST_A, 10, 0), 0);
	cr_assert_eq(note_site(&dst, &dsites, 300, &ps, ST_B, 10, 0), 1);
	cr_assert_eq(dst.n, 2);
	cr_assert_eq(src.n, 0);
	cells__free(&dst);
	cells__free(&src);
	sites__free(&dsites);
	sites__free(&sites);
	pystacks__free(&ps);
}

/* The census's row: made once, never running, counted like a run. */
Test(cells, before_attach_is_a_row_of_its_own, .timeout = 10)
{
	struct cell_totals tot[3];
	struct cells c;
	struct sites s;
	struct heap h;
	int64_t old, now;
	int32_t run;

	cells__init(&c);
	cr_assert_eq(sites__init(&s), 0);
	cr_assert_eq(heap__init(&h), 0);
	run = cells__before_run(&c, 100);
	cr_assert_eq(run, 0);
	cr_assert_eq(cells__before_run(&c, 200), 0, "made once");
	cr_assert_str_eq(c.runs[0].label, "(before attach)");
	cr_assert(c.runs[0].before);
	cr_assert_neq(c.runs[0].finished_ns, 0, "it never runs");
	old = sites__add_before(&s, CENSUS_HEAP);
	s.v[old].run = run;
	now = unit_site(&s, &h, 0x401000, 0);
	cr_assert_eq(heap__grow_sites(&h, s.n), 0);
	heap__alloc(&h, 0x1000, 700, old, 1);
	heap__alloc(&h, 0x2000, 50, now, 1);
	cells__totals(&c, &s, &h, tot);
	cr_assert_eq(tot[0].live_bytes, 700);
	cr_assert_eq(tot[1].live_bytes, 50, "the rest is outside cells");
	heap__free(&h);
	sites__free(&s);
	cells__free(&c);
}
