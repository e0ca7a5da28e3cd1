// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "agent.h"
#include "view/batch.h"
#include "procs/tracee.h"
#include "unit.h"

Test(batch, report_lines, .timeout = 10)
{
	static struct agent a;
	struct tracee *t;
	char out[4096];
	FILE *f;
	size_t n;

	/* Nothing traced yet while waiting for --pid/--comm processes. */
	f = tmpfile();
	cr_assert_not_null(f);
	batch__report(&a, f, 1.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_eq(count_lines(out), 2, "%s", out);
	cr_assert_eq(strncmp(out, "TIME", 4), 0, "a header first: %s", out);
	cr_assert_not_null(strstr(out, "(no traced process yet)"));

	t = tracee__new(getpid(), true);
	cr_assert_not_null(t);
	t->heap.live_bytes = 1536;
	t->heap.peak_bytes = 5 * 1024 * 1024;
	t->heap.allocs = 500;
	t->dropped = 3;
	t->attach = ATTACH_DONE;
	cr_assert_eq(tracees__add(&a.procs, t), 0);
	f = tmpfile();
	batch__report(&a, f, 2.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_eq(count_lines(out), 1, "no header on the second line: %s",
		     out);
	cr_assert_not_null(strstr(out, "test_batch"), "%s", out);
	cr_assert_not_null(strstr(out, "1.5 KiB"), "%s", out);
	cr_assert_not_null(strstr(out, "5.0 MiB"), "%s", out);
	cr_assert_not_null(strstr(out, " 250 "), "500 allocs in 2 s: %s", out);
	cr_assert_eq(t->alloc_rate, 250.0);
	cr_assert_eq(t->allocs_prev, 500);
	cr_assert_null(strstr(out, "attach"), "%s", out);

	t->attach = ATTACH_FAILED;
	f = tmpfile();
	batch__report(&a, f, 1.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_not_null(strstr(out, "(attach failed)"), "%s", out);
	cr_assert_eq(t->alloc_rate, 0.0, "no new allocations");
	tracees__free(&a.procs);
}

/* ---- batch__cells ------------------------------------------------------ */

#define CELL_A "/tmp/ipykernel_42/4062188087.py"
#define CELL_B "/tmp/ipykernel_42/1234567890.py"
#define CELL_C "/tmp/ipykernel_42/555.py"
#define MOD_A 0x1111000000000001ULL
#define MOD_B 0x2222000000000001ULL
#define ST_A 0xa000000000000001ULL
#define ST_B 0xa000000000000002ULL
#define MIB (1024ULL * 1024)

static void cell_code(struct tracee *t, uint64_t id, uint64_t stack,
		      const char *file)
{
	struct rec_pystack *st = calloc(1, sizeof(*st));
	struct rec_pycode r;

	cr_assert_not_null(st);
	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = 0x7f0000001000ULL + (id & 0xff) * 0x1000;
	strncpy(r.filename, file, sizeof(r.filename) - 1);
	strcpy(r.name, "<module>");
	cr_assert_eq(pystacks__add_code(&t->py, &r), 0);
	st->stack_id = stack;
	st->depth = 1;
	st->frames[0].code_id = id;
	cr_assert_eq(pystacks__add_stack(&t->py, st), 0);
	free(st);
}

static void cell_marker(struct tracee *t, bool done, int64_t n,
			const char *file, const char *head, uint64_t ts)
{
	struct rec_cell m;

	memset(&m, 0, sizeof(m));
	m.done = done;
	m.success = done;
	m.execution_count = n;
	m.ts_ns = ts;
	strncpy(m.file, file, sizeof(m.file) - 1);
	strncpy(m.head, head, sizeof(m.head) - 1);
	cells__marker(&t->cells, &m, t->heap.live_bytes);
}

/* A site with its Python stack (0: none), noted as events.c does. */
static int64_t cell_site(struct tracee *t, uint64_t key, uint64_t stack)
{
	int64_t s = tracee__site(t, key, stack, NULL, 1);

	cr_assert_geq(s, 0);
	return s;
}

static void cell_alloc(struct tracee *t, int64_t site, uint64_t addr,
		       uint64_t size)
{
	uint64_t peak = t->heap.peak_bytes;

	cr_assert_eq(heap__alloc(&t->heap, addr, size, site, addr), 0);
	cells__on_alloc(&t->cells, t->sites.v[site].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
}

/* What batch__cells prints, as one string (caller frees). */
static char *cells_text(struct tracee *t, uint64_t now_ns)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	batch__cells(f, t, now_ns);
	fclose(f);
	cr_assert_not_null(text);
	return text;
}

/* Line i (0-based) of text, without its newline. */
static const char *line_of(const char *text, int i)
{
	static char buf[512];
	const char *end;

	for (; i > 0 && text; i--) {
		text = strchr(text, '\n');
		text = text ? text + 1 : NULL;
	}
	cr_assert_not_null(text);
	end = strchr(text, '\n');
	cr_assert_not_null(end);
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - text), text);
	return buf;
}

static const char *row(const char *label, const char *live, const char *high,
		       const char *above, const char *at, const char *allocs,
		       const char *secs, const char *source)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "  %-16s %10s %10s %10s %10s %7s %7s  %s",
		 label, live, high, above, at, allocs, secs, source);
	return buf;
}

/*
 * Outside code holds 1 MiB; In [3] allocates 8 MiB and 2 MiB (the
 * high-water mark, 11 MiB), frees the 2 MiB and ends after 2.5 s; outside
 * code adds 512 KiB; an unmarked run of another cell 1 KiB; In [5] runs.
 */
Test(batch, cells_table, .timeout = 10)
{
	struct tracee *t = tracee__new(getpid(), false);
	char want[256], *text;
	int64_t out, a, b;

	cr_assert_not_null(t);
	cell_code(t, MOD_A, ST_A, CELL_A);
	cell_code(t, MOD_B, ST_B, CELL_B);
	out = cell_site(t, 0x401000, 0);
	cell_alloc(t, out, 0x100000, MIB);
	cell_marker(t, false, 3, CELL_A, "x = np.zeros(10**6)", 1000000000);
	a = cell_site(t, 0x402000, ST_A);
	cell_alloc(t, a, 0x200000, 8 * MIB);
	cell_alloc(t, a, 0x300000, 2 * MIB);
	cr_assert_eq(heap__release(&t->heap, 0x300000), 2 * MIB);
	cell_marker(t, true, 3, CELL_A, "", 3500000000);
	cell_alloc(t, out, 0x400000, MIB / 2);
	b = cell_site(t, 0x403000, ST_B);
	cell_alloc(t, b, 0x500000, 1024);
	cell_marker(t, false, 5, CELL_C, "", 10000000000);
	cr_assert_eq(t->cells.n, 3);
	cr_assert_eq(t->cells.peak_run, 0);

	text = cells_text(t, 12250000000);
	cr_assert_eq(count_lines(text), 6, "%s", text);
	snprintf(want, sizeof(want),
		 "cells of pid %d (test_batch): high-water mark 11.0 MiB, "
		 "reached in In [3]",
		 (int)getpid());
	cr_assert_str_eq(line_of(text, 0), want);
	cr_assert_str_eq(line_of(text, 1),
			 row("CELL", "LIVE", "HIGH", "+ABOVE", "AT PEAK",
			     "ALLOCS", "TIME", "SOURCE"));
	cr_assert_str_eq(line_of(text, 2),
			 row("In [3]", "8.0 MiB", "11.0 MiB", "10.0 MiB",
			     "10.0 MiB", "2", "2.50s", "x = np.zeros(10**6)"));
	cr_assert_str_eq(line_of(text, 3),
			 row("1234567890.py", "1.0 KiB", "9.5 MiB", "1.0 KiB",
			     "0 B", "1", "-", CELL_B));
	cr_assert_str_eq(line_of(text, 4),
			 row("In [5]", "0 B", "9.5 MiB", "0 B", "0 B", "0",
			     "2.25s+", CELL_C));
	cr_assert_str_eq(line_of(text, 5),
			 row("(outside cells)", "1.5 MiB", "-", "-", "1.0 MiB",
			     "2", "-", ""));
	free(text);
	tracee__delete(t);
}

Test(batch, cells_peak_outside_any_cell, .timeout = 10)
{
	struct tracee *t = tracee__new(getpid(), false);
	char *text, *nl;
	int64_t out, a;

	cr_assert_not_null(t);
	cell_code(t, MOD_A, ST_A, CELL_A);
	a = cell_site(t, 0x402000, ST_A);
	cell_alloc(t, a, 0x200000, 100);
	cr_assert_eq(heap__release(&t->heap, 0x200000), 100);
	cr_assert_eq(t->cells.current, 0);
	cells__code_freed(&t->cells, t->cells.runs[0].code_addr, 2);
	out = cell_site(t, 0x401000, 0);
	cell_alloc(t, out, 0x100000, 3000);

	text = cells_text(t, 10);
	nl = strchr(text, '\n');
	cr_assert_not_null(nl);
	*nl = '\0';
	cr_assert_not_null(strstr(text, "high-water mark 2.9 KiB, reached in "
					"(outside cells)"),
			   "%s", text);
	free(text);
	tracee__delete(t);
}

Test(batch, cells_nothing_without_runs, .timeout = 10)
{
	struct tracee *t = tracee__new(getpid(), false);
	char *text;
	int64_t out;

	cr_assert_not_null(t);
	out = cell_site(t, 0x401000, 0);
	cell_alloc(t, out, 0x100000, 3000);
	text = cells_text(t, 10);
	cr_assert_str_eq(text, "");
	free(text);
	tracee__delete(t);
}
