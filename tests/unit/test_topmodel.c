// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include "model/cells.h"
#include "model/heap.h"
#include "model/pystacks.h"
#include "view/topmodel.h"
#include "unit.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)

/* A notebook kernel's cells (as in test_cells.c) and a library. */
#define FILE_A "/tmp/ipykernel_1514/4062188087.py"
#define FILE_B "/tmp/ipykernel_1514/1234567890.py"
#define FILE_LIB "/usr/lib/python3/dist-packages/numpy/core/numeric.py"
#define FILE_SHELL "/usr/lib/python3/dist-packages/IPython/core/shell.py"
#define KERNEL_CMD                                                      \
	"/usr/bin/python3 -m ipykernel_launcher -f /root/.local/share/" \
	"jupyter/runtime/kernel-1a2b3c4d-5e6f-7a8b-9c0d-112233445566.json"

#define MOD_A 0x1111000000000001ULL /* cell A's <module>, line 1 */
#define MAKE_A 0x1111000000000003ULL /* def make() in cell A, line 2 */
#define MOD_B 0x2222000000000001ULL
#define LIB 0x3333000000000001ULL /* numpy zeros, line 10 */
#define SHELL 0x4444000000000001ULL /* IPython run_code, line 20 */

/* Stacks, innermost first as the probe records them. */
#define ST_A 0xa000000000000001ULL /* LIB <- MOD_A <- SHELL */
#define ST_A_MAKE 0xa000000000000002ULL /* LIB <- MAKE_A <- MOD_A <- SHELL */
#define ST_B_MAKE 0xa000000000000003ULL /* LIB <- MAKE_A <- MOD_B <- SHELL */
#define ST_OUT 0xa000000000000004ULL /* LIB <- SHELL */

static void add_code(struct pystacks *ps, uint64_t id, const char *file,
		     const char *name, int firstlineno)
{
	struct rec_pycode r;

	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = id << 4;
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
		r->frames[i].lasti = -1; /* line: the code's first line */
	}
	cr_assert_eq(pystacks__add_stack(ps, r), 0);
	free(r);
}

static void cell_marker(struct cells *c, bool done, int64_t n, const char *file,
			const char *head, uint64_t ts, uint64_t live)
{
	struct rec_cell m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = REC_CELL;
	m.done = done;
	m.execution_count = n;
	m.success = true;
	m.ts_ns = ts;
	strncpy(m.file, file, sizeof(m.file) - 1);
	strncpy(m.head, head, sizeof(m.head) - 1);
	cells__marker(c, &m, live);
}

/*
 * The kernel used by most tests, built as events.c builds it:
 *   In [1] (A): site 0 (ST_A) 3 MiB, site 1 (ST_A_MAKE) 512 KiB
 *   outside:    site 2 (ST_OUT, during `import numpy`) 30 KiB
 *   In [2] (B): site 3 (ST_B_MAKE) 100 MiB, freed: the high-water mark
 *   then site 0 another 1 MiB; In [3] (A again) starts and runs.
 */
struct kernel {
	struct pystacks ps;
	struct cells c;
	struct heap h;
	struct sites s;
};

#define HWM (3 * MiB + 512 * KiB + 30 * KiB + 100 * MiB)
#define LIVE (4 * MiB + 512 * KiB + 30 * KiB)

static void site(struct kernel *k, uint64_t key, uint64_t stack,
		 const char *import, uint64_t now)
{
	int64_t s = sites__lookup_or_add(&k->s, key, stack, import);

	cr_assert_geq(s, 0);
	cr_assert_lt(s, 4);
	cr_assert_eq(heap__grow_sites(&k->h, s + 1), 0);
	k->s.v[s].run =
		cells__run_of(&k->c, &k->ps, stack, now, k->h.live_bytes);
}

static void alloc(struct kernel *k, uint32_t s, uint64_t addr, uint64_t size,
		  uint64_t now)
{
	uint64_t before = k->h.peak_bytes;

	cr_assert_eq(heap__alloc(&k->h, addr, size, s, now), 0);
	cells__on_alloc(&k->c, k->s.v[s].run, k->h.live_bytes,
			k->h.peak_bytes > before);
}

static void kernel_codes(struct pystacks *ps)
{
	static const uint64_t a[] = { LIB, MOD_A, SHELL };
	static const uint64_t a_make[] = { LIB, MAKE_A, MOD_A, SHELL };
	static const uint64_t b_make[] = { LIB, MAKE_A, MOD_B, SHELL };
	static const uint64_t out[] = { LIB, SHELL };

	pystacks__init(ps);
	add_code(ps, MOD_A, FILE_A, "<module>", 1);
	add_code(ps, MAKE_A, FILE_A, "make", 2);
	add_code(ps, MOD_B, FILE_B, "<module>", 1);
	add_code(ps, LIB, FILE_LIB, "zeros", 10);
	add_code(ps, SHELL, FILE_SHELL, "run_code", 20);
	add_stack(ps, ST_A, 3, a);
	add_stack(ps, ST_A_MAKE, 4, a_make);
	add_stack(ps, ST_B_MAKE, 4, b_make);
	add_stack(ps, ST_OUT, 2, out);
}

static void kernel_native(struct kernel *k)
{
	static char mod[] = "/usr/lib/python3/dist-packages/numpy/core/"
			    "_multiarray_umath.so";
	static char fn[] = "PyArray_Zeros";
	int i;

	for (i = 0; i < 4; i++)
		k->s.v[i].native = (struct frame){ 0x7f0000001000ULL + i, 0x12,
						   i == 3 ? NULL : strdup(fn),
						   strdup(mod) };
	k->s.nresolved = 4;
}

static void kernel(struct kernel *k)
{
	memset(k, 0, sizeof(*k));
	kernel_codes(&k->ps);
	cells__init(&k->c);
	cr_assert_eq(heap__init(&k->h), 0);
	cr_assert_eq(sites__init(&k->s), 0);
	cell_marker(&k->c, false, 1, FILE_A, "a = make()", 100, 0);
	site(k, 0x401000, ST_A, NULL, 110);
	alloc(k, 0, 0x1000, 3 * MiB, 110);
	site(k, 0x402000, ST_A_MAKE, NULL, 120);
	alloc(k, 1, 0x2000, 512 * KiB, 120);
	cell_marker(&k->c, true, 1, FILE_A, "", 130, k->h.live_bytes);
	site(k, 0x403000, ST_OUT, "numpy", 140);
	alloc(k, 2, 0x3000, 30 * KiB, 140);
	cell_marker(&k->c, false, 2, FILE_B, "b = make()", 200,
		    k->h.live_bytes);
	site(k, 0x404000, ST_B_MAKE, NULL, 210);
	alloc(k, 3, 0x4000, 100 * MiB, 210);
	cr_assert_eq(heap__release(&k->h, 0x4000), 100 * MiB);
	cell_marker(&k->c, true, 2, FILE_B, "", 220, k->h.live_bytes);
	alloc(k, 0, 0x5000, 1 * MiB, 230);
	cell_marker(&k->c, false, 3, FILE_A, "while True: grow()", 300,
		    k->h.live_bytes);
	kernel_native(k);
	cr_assert_eq(k->c.n, 3);
	cr_assert_eq(k->h.peak_bytes, HWM);
	cr_assert_eq(k->h.live_bytes, LIVE);
}

static void kernel_free(struct kernel *k)
{
	heap__free(&k->h);
	sites__free(&k->s);
	cells__free(&k->c);
	pystacks__free(&k->ps);
}

static void sites_of(struct kernel *k, struct top_sites *s)
{
	*s = (struct top_sites){ &k->h, &k->s, &k->c, &k->ps };
}

/* ---- names, units, truncation ------------------------------------------- */

static const char *name_of(const char *cmdline, const char *comm)
{
	static char buf[64];

	memset(buf, 'x', sizeof(buf));
	topmodel__proc_name(cmdline, comm, buf, sizeof(buf));
	return buf;
}

Test(topmodel, proc_name, .timeout = 10)
{
	cr_assert_str_eq(name_of(KERNEL_CMD, "python3"), "kernel-1a2b3c4d");
	cr_assert_str_eq(name_of("python3 -m ipykernel_launcher -f "
				 "kernel-0badcafe-1111.json",
				 "python3"),
			 "kernel-0badcafe");
	cr_assert_str_eq(name_of("/usr/bin/python3 -m ipykernel_launcher -f "
				 "/tmp/tmppgl5dooi.json --HistoryManager.x=1",
				 "python3"),
			 "kernel:tmppgl5dooi", "nbclient's connection file");
	cr_assert_str_eq(name_of("python3 -m ipykernel_launcher", "python3"),
			 "ipykernel_launcher");
	cr_assert_str_eq(name_of("/usr/bin/python3 /home/u/train.py --lr 3",
				 "python3"),
			 "train.py");
	cr_assert_str_eq(name_of("python3.11 -u -X dev -W ignore a/b/eda.py",
				 "python3.11"),
			 "eda.py", "options and their arguments skipped");
	cr_assert_str_eq(name_of("/usr/bin/python3 -m http.server 8000", "pytho"
									 "n3"),
			 "http.server");
	cr_assert_str_eq(name_of("/usr/bin/python3 -c import x", "python3"),
			 "python3 -c");
	cr_assert_str_eq(name_of("/usr/bin/python3", "python3"), "python3");
	cr_assert_str_eq(name_of("./build/progs/allocs 10", "allocs"), "alloc"
								       "s");
	/* kernel- must start a path component and end in .json */
	cr_assert_str_eq(name_of("/usr/bin/python3 my-kernel-12ab.py", "p"),
			 "my-kernel-12ab.py");
	cr_assert_str_eq(name_of("", "python3"), "python3");
	cr_assert_str_eq(name_of(NULL, "python3"), "python3");
	cr_assert_str_eq(name_of(NULL, ""), "?");
}

static const char *fit(const char *s, int width, bool utf8, int *cols)
{
	static char buf[64];

	memset(buf, 'x', sizeof(buf));
	*cols = topmodel__fit(s, width, utf8, buf, sizeof(buf));
	return buf;
}

Test(topmodel, fit_cuts_by_columns_with_an_ellipsis, .timeout = 10)
{
	int cols;

	cr_assert_str_eq(fit("hello", 10, false, &cols), "hello");
	cr_assert_eq(cols, 5);
	cr_assert_str_eq(fit("hello", 5, false, &cols), "hello");
	cr_assert_eq(cols, 5);
	cr_assert_str_eq(fit("hello world", 5, false, &cols), "hell~");
	cr_assert_eq(cols, 5);
	cr_assert_str_eq(fit("hello world", 5, true, &cols), "hell…");
	cr_assert_eq(cols, 5);
	/* UTF-8: one column per code point, never cut inside one. */
	cr_assert_str_eq(fit("héllo", 5, true, &cols), "héllo");
	cr_assert_eq(cols, 5);
	cr_assert_str_eq(fit("héllo wörld", 2, true, &cols), "h…");
	cr_assert_eq(cols, 2);
	cr_assert_str_eq(fit("aé", 1, true, &cols), "…");
	/* Without UTF-8 every byte is a column, non-ASCII shown as '?'. */
	cr_assert_str_eq(fit("héllo", 10, false, &cols), "h??llo");
	cr_assert_eq(cols, 6);
	cr_assert_str_eq(fit("ab", 1, false, &cols), "~");
	cr_assert_str_eq(fit("ab", 0, false, &cols), "");
	cr_assert_eq(cols, 0);
	cr_assert_str_eq(fit("", 5, true, &cols), "");
}

Test(topmodel, fit_respects_the_buffer, .timeout = 10)
{
	char buf[6];

	cr_assert_eq(topmodel__fit("abcdefgh", 20, false, buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "abcd~");
	cr_assert_eq(topmodel__fit("abcdefgh", 20, true, buf, sizeof(buf)), 3);
	cr_assert_str_eq(buf, "ab…");
}

Test(topmodel, sort_names, .timeout = 10)
{
	cr_assert_str_eq(topmodel__sort_name(TOP_CELLS, TOP_SORT_BYTES), "byte"
									 "s");
	cr_assert_str_eq(topmodel__sort_name(TOP_CELLS, TOP_SORT_HIGH), "peak "
									"durin"
									"g");
	cr_assert_str_eq(topmodel__sort_name(TOP_STACKS, TOP_SORT_HIGH), "block"
									 "s");
	cr_assert_str_eq(topmodel__sort_name(TOP_PROCS, TOP_SORT_ORDER), "pid");
	cr_assert_str_eq(topmodel__sort_name(TOP_PROCS, TOP_NSORT), "?");
}

/* ---- history and sparkline --------------------------------------------- */

static const char *spark(const struct top_history *h, int width, bool utf8,
			 int *n)
{
	static char buf[TOP_HISTORY * 3 + 1];

	memset(buf, 'x', sizeof(buf));
	*n = topmodel__sparkline(h, width, utf8, buf, sizeof(buf));
	return buf;
}

Test(topmodel, history_ring_keeps_the_newest, .timeout = 10)
{
	static struct top_history h;
	uint64_t i;

	for (i = 0; i < TOP_HISTORY + 5; i++)
		top_history__push(&h, i);
	cr_assert_eq(h.n, TOP_HISTORY);
	cr_assert_eq(top_history__at(&h, 0), 5);
	cr_assert_eq(top_history__at(&h, TOP_HISTORY - 1), TOP_HISTORY + 4);
}

Test(topmodel, sparkline_levels_and_groups, .timeout = 10)
{
	static struct top_history h;
	uint64_t i;
	int n;

	cr_assert_str_eq(spark(&h, 10, true, &n), "");
	cr_assert_eq(n, 0);
	for (i = 0; i < 8; i++)
		top_history__push(&h, i * MiB);
	/* 0..7 MiB scaled to the highest: one level each. */
	cr_assert_str_eq(spark(&h, 20, false, &n), "_.,-=+*#");
	cr_assert_eq(n, 8);
	cr_assert_str_eq(spark(&h, 8, true, &n), "▁▂▃▄▅▆▇█");
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 10; i++)
		top_history__push(&h, i);
	/* Pairs (0,1) (2,3) ... each shown as its highest, of 9. */
	cr_assert_str_eq(spark(&h, 5, false, &n), ".,=+#");
	cr_assert_eq(n, 5);
	/* Groups of 4 ending at the newest: (0,1) (2..5) (6..9). */
	cr_assert_str_eq(spark(&h, 3, false, &n), ".=#");
	cr_assert_str_eq(spark(&h, 0, false, &n), "");
	memset(&h, 0, sizeof(h));
	top_history__push(&h, 0);
	top_history__push(&h, 0);
	cr_assert_str_eq(spark(&h, 10, true, &n), "▁▁", "all zero: floor");
}

/* ---- processes ---------------------------------------------------------- */

static uint64_t fake_rss(pid_t pid)
{
	return pid * MiB;
}

static void tracee_init(struct tracee *t, pid_t pid, const char *cmdline)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	strcpy(t->comm, "python3");
	t->cmdline = (char *)cmdline;
	t->attach = ATTACH_DONE;
	cr_assert_eq(heap__init(&t->heap), 0);
	cells__init(&t->cells);
}

Test(topmodel, sample_rates_rss_and_forgetting, .timeout = 10)
{
	static struct tracee a, b;
	struct tracee *v[2] = { &a, &b };
	struct tracees ts = { v, 2, 2, NULL };
	struct top_model m;
	struct top_proc *p;

	tracee_init(&a, 100, KERNEL_CMD);
	tracee_init(&b, 200, "/usr/bin/python3 train.py");
	a.heap.allocs = 1000;
	topmodel__init(&m);
	topmodel__sample(&m, &ts, 1.0, fake_rss);
	p = topmodel__proc(&m, 100);
	cr_assert_eq(m.n, 2);
	cr_assert_float_eq(p->alloc_rate, 0, 1e-9, "first sample: no rate");
	cr_assert_eq(p->rss, 100 * MiB);
	cr_assert_eq(p->live.n, 1);
	a.heap.allocs = 1500;
	a.heap.live_bytes = 7;
	topmodel__sample(&m, &ts, 2.0, fake_rss);
	p = topmodel__proc(&m, 100);
	cr_assert_float_eq(p->alloc_rate, 250, 1e-9);
	cr_assert_eq(p->live.n, 2);
	cr_assert_eq(top_history__at(&p->live, 1), 7);
	/* b exits: no RSS to read; then it is no longer traced. */
	b.exited = true;
	topmodel__sample(&m, &ts, 1.0, fake_rss);
	cr_assert_eq(topmodel__proc(&m, 200)->rss, 0);
	ts.len = 1;
	topmodel__sample(&m, &ts, 1.0, fake_rss);
	cr_assert_eq(m.n, 1);
	cr_assert_eq(m.procs[0].pid, 100);
	topmodel__free(&m);
	heap__free(&a.heap);
	heap__free(&b.heap);
}

Test(topmodel, procs_sorted_each_way, .timeout = 10)
{
	static struct tracee a, b, c;
	struct tracee *v[3] = { &a, &b, &c };
	struct tracees ts = { v, 3, 3, NULL };
	struct top_proc_row *rows;
	struct top_model m;

	tracee_init(&a, 300, KERNEL_CMD);
	tracee_init(&b, 100, "/usr/bin/python3 train.py");
	tracee_init(&c, 200, "./allocs");
	a.heap.live_bytes = 10, a.heap.peak_bytes = 50, a.heap.allocs = 10;
	b.heap.live_bytes = 30, b.heap.peak_bytes = 40, b.heap.allocs = 0;
	c.heap.live_bytes = 20, c.heap.peak_bytes = 60, c.heap.allocs = 5;
	c.attach = ATTACH_PENDING;
	topmodel__init(&m);
	topmodel__sample(&m, &ts, 1.0, fake_rss);
	a.heap.allocs += 9, b.heap.allocs += 1, c.heap.allocs += 3;
	topmodel__sample(&m, &ts, 1.0, fake_rss);

	cr_assert_eq(topmodel__procs(&ts, &m, TOP_SORT_BYTES, &rows), 3);
	cr_assert_eq(rows[0].pid, 100);
	cr_assert_eq(rows[1].pid, 200);
	cr_assert_eq(rows[2].pid, 300);
	cr_assert_str_eq(rows[0].name, "train.py");
	cr_assert_str_eq(rows[2].name, "kernel-1a2b3c4d");
	cr_assert_str_eq(rows[1].state, "attaching");
	cr_assert_str_eq(rows[0].state, "");
	cr_assert_eq(rows[2].rss, 300 * MiB);
	free(rows);
	cr_assert_eq(topmodel__procs(&ts, &m, TOP_SORT_HIGH, &rows), 3);
	cr_assert_eq(rows[0].pid, 200);
	cr_assert_eq(rows[1].pid, 300);
	free(rows);
	cr_assert_eq(topmodel__procs(&ts, &m, TOP_SORT_ALLOCS, &rows), 3);
	cr_assert_eq(rows[0].pid, 300);
	cr_assert_float_eq(rows[0].alloc_rate, 9, 1e-9);
	cr_assert_eq(rows[1].pid, 200);
	free(rows);
	cr_assert_eq(topmodel__procs(&ts, &m, TOP_SORT_ORDER, &rows), 3);
	cr_assert_eq(rows[0].pid, 100);
	cr_assert_eq(rows[2].pid, 300);
	free(rows);
	topmodel__free(&m);
	heap__free(&a.heap);
	heap__free(&b.heap);
	heap__free(&c.heap);
}

Test(topmodel, proc_bar_and_line, .timeout = 10)
{
	static struct kernel k;
	static struct tracee t;
	static struct top_history h;
	struct top_proc p = { .pid = 1514,
			      .rss = 64 * MiB,
			      .alloc_rate = 1234 };
	struct top_proc_row r;
	char l1[256], l2[256];
	size_t spark;

	setenv("TZ", "UTC", 1);
	tzset();
	kernel(&k);
	memset(&t, 0, sizeof(t));
	t.pid = 1514;
	strcpy(t.comm, "python3");
	t.cmdline = KERNEL_CMD;
	t.attach = ATTACH_DONE;
	t.heap = k.h;
	t.cells = k.c;
	t.dropped = 3;
	topmodel__proc_row(&t, &p, &r);
	cr_assert_str_eq(r.name, "kernel-1a2b3c4d");
	cr_assert_str_eq(r.peak_cell, "In [2]");
	cr_assert_eq(r.peak_at_ns, 210);
	cr_assert_eq(r.nruns, 3);
	top_history__push(&h, 0);
	top_history__push(&h, HWM);
	top_history__push(&h, LIVE);
	/* The mark at monotonic 210 ns is 23:05:14 UTC. */
	topmodel__proc_bar(&r, &h, 1.0, 83114000000000LL - 210, 120, true, l1,
			   l2, sizeof(l1), &spark);
	cr_assert_str_eq(l1, "PID 1514  kernel-1a2b3c4d (python3)  live "
			     "4.5 MiB  RSS 64.0 MiB  untracked 59.5 MiB");
	cr_assert_str_eq(l2, "high-water 103.5 MiB in In [2] at 23:05:14   "
			     "live, last 3s: ▁█▁");
	cr_assert_eq(spark, strlen(l2) - strlen("▁█▁"));
	/* Narrow: cut, with the ellipsis. */
	topmodel__proc_bar(&r, &h, 1.0, 0, 30, false, l1, l2, sizeof(l1),
			   &spark);
	cr_assert_str_eq(l1, "PID 1514  kernel-1a2b3c4d (py~");
	cr_assert_str_eq(l2, "high-water 103.5 MiB in In [2~");

	topmodel__procs_head(200, false, l1, sizeof(l1));
	cr_assert_str_eq(l1, "     PID  NAME              COMM               "
			     "    LIVE HIGH-WATER        RSS  ALLOC/S  DROPPED"
			     "  CELLS  STATE");
	snprintf(r.name, sizeof(r.name), "kernel:tmptixdr406");
	topmodel__proc_line(&r, 200, false, l1, sizeof(l1));
	cr_assert_str_eq(l1, "    1514  kernel:tmptixdr4~ python3            "
			     " 4.5 MiB  103.5 MiB   64.0 MiB     1.2k        3"
			     "      3");
	snprintf(r.name, sizeof(r.name), "kernel-1a2b3c4d");
	topmodel__proc_line(&r, 200, false, l1, sizeof(l1));
	cr_assert_str_eq(l1, "    1514  kernel-1a2b3c4d   python3            "
			     " 4.5 MiB  103.5 MiB   64.0 MiB     1.2k        3"
			     "      3");
	kernel_free(&k);
}

/* ---- cells --------------------------------------------------------------- */

static void expect_order(const struct top_cell_row *r, ssize_t n,
			 const char *const *labels)
{
	ssize_t i;

	for (i = 0; i < n; i++)
		cr_assert_str_eq(r[i].label, labels[i], "row %zd: %s, want %s",
				 i, r[i].label, labels[i]);
}

Test(topmodel, cell_rows, .timeout = 10)
{
	static struct kernel k;
	struct top_cell_row *r;

	kernel(&k);
	cr_assert_eq(topmodel__cells(&k.h, &k.s, &k.c, false, TOP_SORT_BYTES,
				     &r),
		     4);
	expect_order(r, 4,
		     (const char *[]){ "In [1]", "(outside cells)", "In [2]",
				       "In [3]" });
	cr_assert_eq(r[0].run, 0);
	cr_assert_eq(r[0].bytes, 4 * MiB + 512 * KiB);
	cr_assert_eq(r[0].high, 3 * MiB + 512 * KiB);
	cr_assert_float_eq(r[0].share, (3.5 * MiB) / HWM, 1e-12);
	cr_assert_eq(r[0].allocs, 3);
	cr_assert_str_eq(r[0].source, "a = make()");
	cr_assert_not(r[0].running);
	cr_assert_not(r[0].current);
	cr_assert_eq(r[1].run, CELL_OUTSIDE);
	cr_assert_eq(r[1].bytes, 30 * KiB);
	cr_assert_eq(r[1].high, 0);
	cr_assert_str_eq(r[1].source, "");
	cr_assert(r[2].drove_peak);
	cr_assert_eq(r[2].high, HWM);
	cr_assert_float_eq(r[2].share, (double)(100 * MiB) / HWM, 1e-12);
	cr_assert(r[3].running);
	cr_assert(r[3].current);
	cr_assert_eq(r[3].high, LIVE, "the level when it started");
	free(r);

	/* At the high-water mark: In [2]'s temporary leads. */
	cr_assert_eq(
		topmodel__cells(&k.h, &k.s, &k.c, true, TOP_SORT_BYTES, &r), 4);
	expect_order(r, 4,
		     (const char *[]){ "In [2]", "In [1]", "(outside cells)",
				       "In [3]" });
	cr_assert_eq(r[0].bytes, 100 * MiB);
	cr_assert_eq(r[1].bytes, 3 * MiB + 512 * KiB);
	free(r);
	cr_assert_eq(
		topmodel__cells(&k.h, &k.s, &k.c, false, TOP_SORT_HIGH, &r), 4);
	expect_order(r, 4,
		     (const char *[]){ "In [2]", "In [3]", "In [1]",
				       "(outside cells)" });
	free(r);
	/* Ties keep run order, "(outside cells)" last among them. */
	cr_assert_eq(topmodel__cells(&k.h, &k.s, &k.c, false, TOP_SORT_ALLOCS,
				     &r),
		     4);
	expect_order(r, 4,
		     (const char *[]){ "In [1]", "In [2]", "(outside cells)",
				       "In [3]" });
	free(r);
	cr_assert_eq(topmodel__cells(&k.h, &k.s, &k.c, false, TOP_SORT_ORDER,
				     &r),
		     4);
	expect_order(r, 4,
		     (const char *[]){ "In [1]", "In [2]", "In [3]",
				       "(outside cells)" });
	free(r);
	kernel_free(&k);
}

Test(topmodel, no_cell_runs_no_rows, .timeout = 10)
{
	struct top_cell_row *r;
	struct sites s = { 0 };
	struct cells c;
	struct heap h;

	cells__init(&c);
	cr_assert_eq(heap__init(&h), 0);
	cr_assert_eq(heap__alloc(&h, 0x1000, 10, unit_site(&s, &h, 1, 0), 1),
		     0);
	cr_assert_eq(topmodel__cells(&h, &s, &c, false, TOP_SORT_BYTES, &r), 0);
	free(r);
	heap__free(&h);
	sites__free(&s);
	cells__free(&c);
}

Test(topmodel, cell_lines, .timeout = 10)
{
	static struct kernel k;
	struct top_cell_row *r;
	char buf[256];

	kernel(&k);
	cr_assert_eq(topmodel__cells(&k.h, &k.s, &k.c, false, TOP_SORT_ORDER,
				     &r),
		     4);
	topmodel__cells_head(false, 100, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  CELL                  LIVE PEAK DURING  OF "
			      "HWM  ALLOCS  STATE   SOURCE");
	topmodel__cells_head(true, 100, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  CELL               AT PEAK PEAK DURING  OF "
			      "HWM  ALLOCS  STATE   SOURCE");
	topmodel__cell_line(&r[0], 100, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  In [1]             4.5 MiB     3.5 MiB    "
			      "3.4%       3  done    a = make()");
	topmodel__cell_line(&r[1], 100, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  In [2]                 0 B   103.5 MiB   "
			      "96.6%       1  done    b = make()");
	/* The running cell is marked; its source cut to the width. */
	topmodel__cell_line(&r[2], 72, true, buf, sizeof(buf));
	cr_assert_str_eq(buf, "▶ In [3]                 0 B     4.5 MiB    "
			      "0.0%       0  running while…");
	topmodel__cell_line(&r[2], 72, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "> In [3]                 0 B     4.5 MiB    "
			      "0.0%       0  running while~");
	topmodel__cell_line(&r[3], 100, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  (outside cells)   30.0 KiB           -    "
			      "0.0%       1");
	/* Narrower than the columns: cut at the width, never past it. */
	topmodel__cell_line(&r[0], 30, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "  In [1]             4.5 MiB");
	free(r);
	kernel_free(&k);
}

/* ---- stacks -------------------------------------------------------------- */

static void expect_frames(const struct top_stack_row *r,
			  const char *const *want, size_t n)
{
	size_t i;

	cr_assert_eq(r->nframes, n, "%zu frames, want %zu", r->nframes, n);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(r->frames[i].text, want[i], "frame %zu", i);
		cr_assert_eq(r->frames[i].native,
			     i == n - 1 && strncmp(want[i], "(before", 7));
	}
}

Test(topmodel, stack_rows_and_frames, .timeout = 10)
{
	static struct kernel k;
	struct top_stack_row *r;
	struct top_sites s;

	kernel(&k);
	sites_of(&k, &s);
	cr_assert_eq(topmodel__stacks(&s, false, TOP_ANY_RUN, TOP_SORT_BYTES,
				      10, &r),
		     3, "the freed 100 MiB holds nothing now");
	cr_assert_eq(r[0].site, 0);
	cr_assert_eq(r[0].bytes, 4 * MiB);
	cr_assert_eq(r[0].count, 2);
	cr_assert_str_eq(r[0].cell, "In [1]");
	expect_frames(&r[0],
		      (const char *[]){ "shell.py:20 run_code",
					"In [1]:1 <module>",
					"numeric.py:10 zeros",
					"PyArray_Zeros+0x12 "
					"(_multiarray_umath.so)" },
		      4);
	cr_assert_eq(r[1].site, 1);
	expect_frames(&r[1],
		      (const char *[]){ "shell.py:20 run_code",
					"In [1]:1 <module>", "In [1]:2 make",
					"numeric.py:10 zeros",
					"PyArray_Zeros+0x12 "
					"(_multiarray_umath.so)" },
		      5);
	cr_assert_eq(r[2].site, 2);
	cr_assert_str_eq(r[2].cell, "");
	expect_frames(&r[2],
		      (const char *[]){ "[import numpy]",
					"shell.py:20 run_code",
					"numeric.py:10 zeros",
					"PyArray_Zeros+0x12 "
					"(_multiarray_umath.so)" },
		      4);
	topmodel__free_stacks(r, 3);
	kernel_free(&k);
}

Test(topmodel, stacks_at_peak_by_cell_and_sorted, .timeout = 10)
{
	static struct kernel k;
	struct top_stack_row *r;
	struct top_sites s;

	kernel(&k);
	sites_of(&k, &s);
	/* In [2]'s make(), defined in In [1]'s file: the file's name. */
	cr_assert_eq(topmodel__stacks(&s, true, 1, TOP_SORT_BYTES, 10, &r), 1);
	cr_assert_eq(r[0].site, 3);
	cr_assert_eq(r[0].bytes, 100 * MiB);
	cr_assert_str_eq(r[0].cell, "In [2]");
	expect_frames(
		&r[0],
		(const char *[]){ "shell.py:20 run_code", "In [2]:1 <module>",
				  "4062188087.py:2 make", "numeric.py:10 zeros",
				  "0x7f0000001003 (_multiarray_umath.so)" },
		5);
	topmodel__free_stacks(r, 1);
	cr_assert_eq(topmodel__stacks(&s, false, 1, TOP_SORT_BYTES, 10, &r), 0);
	topmodel__free_stacks(r, 0);
	cr_assert_eq(topmodel__stacks(&s, false, 0, TOP_SORT_BYTES, 10, &r), 2);
	cr_assert_eq(r[0].site, 0);
	cr_assert_eq(r[1].site, 1);
	topmodel__free_stacks(r, 2);
	cr_assert_eq(topmodel__stacks(&s, false, CELL_OUTSIDE, TOP_SORT_BYTES,
				      10, &r),
		     1);
	cr_assert_eq(r[0].site, 2);
	topmodel__free_stacks(r, 1);
	/* By blocks (ties: first seen), then only the first. */
	cr_assert_eq(topmodel__stacks(&s, true, TOP_ANY_RUN, TOP_SORT_HIGH, 10,
				      &r),
		     4);
	cr_assert_eq(r[0].site, 0);
	cr_assert_eq(r[0].count, 1, "one block of site 0 at the mark");
	cr_assert_eq(r[1].site, 1);
	cr_assert_eq(r[3].site, 3);
	topmodel__free_stacks(r, 4);
	cr_assert_eq(topmodel__stacks(&s, true, TOP_ANY_RUN, TOP_SORT_BYTES, 1,
				      &r),
		     1);
	cr_assert_eq(r[0].site, 3);
	topmodel__free_stacks(r, 1);
	kernel_free(&k);
}

Test(topmodel, stack_without_python_or_resolution, .timeout = 10)
{
	static struct kernel k;
	struct top_stack_row *r;
	struct top_sites s;
	size_t i;

	kernel(&k);
	sites_of(&k, &s);
	for (i = 0; i < k.s.n; i++) { /* no Python stack, no import */
		k.s.v[i].stack = 0;
		free(k.s.v[i].import);
		k.s.v[i].import = NULL;
	}
	k.s.nresolved = 1; /* site 0 resolved only */
	cr_assert_eq(topmodel__stacks(&s, false, TOP_ANY_RUN, TOP_SORT_ORDER,
				      10, &r),
		     3);
	expect_frames(&r[0],
		      (const char *[]){ "PyArray_Zeros+0x12 "
					"(_multiarray_umath.so)" },
		      1);
	expect_frames(&r[1], (const char *[]){ "[native caller not resolved]" },
		      1);
	topmodel__free_stacks(r, 3);
	kernel_free(&k);
}

Test(topmodel, stack_lines, .timeout = 10)
{
	static struct kernel k;
	struct top_stack_row *r;
	struct top_sites s;
	char buf[256];

	kernel(&k);
	sites_of(&k, &s);
	cr_assert_eq(topmodel__stacks(&s, false, TOP_ANY_RUN, TOP_SORT_BYTES,
				      10, &r),
		     3);
	topmodel__stacks_head(false, 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "       LIVE   BLOCKS  CELL           ALLOCATED "
			      "BY (innermost Python frame)");
	topmodel__stack_line(&r[0], 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "    4.0 MiB        2  In [1]         "
			      "numeric.py:10 zeros");
	topmodel__stack_line(&r[2], 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "   30.0 KiB        1  -              "
			      "numeric.py:10 zeros");
	/* A label as wide as its column still leaves a blank after it. */
	snprintf(r[2].cell, sizeof(r[2].cell),
		 "<ipython-input-12-0123456789ab>");
	topmodel__stack_line(&r[2], 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "   30.0 KiB        1  <ipython-inpu~ "
			      "numeric.py:10 zeros");
	topmodel__frame_line(&r[1], 2, 2, 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "        In [1]:2 make");
	topmodel__frame_line(&r[1], 2, 1, 80, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "      In [1]:2 make");
	topmodel__frame_line(&r[1], 4, 4, 30, false, buf, sizeof(buf));
	cr_assert_str_eq(buf, "            PyArray_Zeros+0x1~");
	topmodel__frame_line(&r[1], 4, 40, 80, false, buf, sizeof(buf));
	cr_assert_eq(strspn(buf, " "), 4 + 2 * 12, "indent capped");
	/* The cell's own frame; none outside cells. */
	cr_assert_eq(topmodel__cell_frame(&r[0]), 1);
	cr_assert_eq(topmodel__cell_frame(&r[1]), 1);
	cr_assert_eq(topmodel__cell_frame(&r[2]), 0);
	topmodel__free_stacks(r, 3);
	kernel_free(&k);
}

/* ---- header -------------------------------------------------------------- */

Test(topmodel, header, .timeout = 10)
{
	struct top_stats st = { .now = 83114,
				.nprocs = 1,
				.events_per_s = 12345,
				.cpu_percent = 0.44 };
	char buf[256];
	size_t hot;

	setenv("TZ", "UTC", 1);
	tzset();
	topmodel__header(&st, 200, false, buf, sizeof(buf), &hot);
	cr_assert_str_eq(buf, "memprof-bpf 23:05:14  1 process  12.3k "
			      "events/s  CPU 0.4%  dropped 0");
	cr_assert_str_eq(buf + hot, "dropped 0");
	st.nprocs = 2;
	st.dropped = 77;
	st.paused = true;
	topmodel__header(&st, 200, false, buf, sizeof(buf), &hot);
	cr_assert_str_eq(buf, "memprof-bpf 23:05:14 (paused)  2 processes  "
			      "12.3k events/s  CPU 0.4%  dropped 77: ring "
			      "buffer full, raise --ringbuf-size");
	cr_assert_str_eq(buf + hot, "dropped 77: ring buffer full, raise "
				    "--ringbuf-size");
	topmodel__header(&st, 20, true, buf, sizeof(buf), &hot);
	cr_assert_str_eq(buf, "memprof-bpf 23:05:1…");
	cr_assert_eq(hot, strlen(buf), "nothing left to highlight");
}

/* A census site is its label: one frame, not a native caller. */
Test(topmodel, before_attach_site_is_its_label, .timeout = 10)
{
	static struct kernel k;
	struct top_stack_row *r;
	struct top_sites s;
	int64_t old;
	ssize_t n;

	kernel(&k);
	old = sites__add_before(&k.s, CENSUS_MMAPPED);
	cr_assert_eq(heap__grow_sites(&k.h, k.s.n), 0);
	heap__alloc(&k.h, 0x7f0000000010, 64 * MiB, old, 9);
	sites_of(&k, &s);
	n = topmodel__stacks(&s, false, TOP_ANY_RUN, TOP_SORT_BYTES, 10, &r);
	cr_assert_eq(n, 4);
	cr_assert_eq(r[0].site, old);
	expect_frames(&r[0], (const char *[]){ "(before attach) mmapped" }, 1);
	cr_assert_not(r[0].frames[0].native);
	topmodel__free_stacks(r, n);
	kernel_free(&k);
}
