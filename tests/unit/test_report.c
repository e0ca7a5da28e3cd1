// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <jansson.h>
#include "format/folded.h"
#include "offline/report.h"
#include "unit.h"

/*
 * A notebook's snapshot, written with ' for " to stay readable: peak
 * 200,000,000 bytes = In [3]'s merge (128 MiB) + In [1]'s load (50 MB)
 * + a BLAS thread outside cells. In [3] held the peak.
 */
static const char NOTEBOOK[] =
	"{'schema': 'memprof-bpf/snapshot', 'version': 1, 'pid': 42,"
	" 'comm': 'ipykernel', 'cmdline': 'python3 -m ipykernel',"
	" 'reason': 'exit', 'taken_at': '2026-01-01T00:00:10.000Z',"
	" 'dropped_events': %d, 'peak_cell': 'In [3]',"
	" 'peak': {'bytes': 200000000, 'count': 5,"
	"  'at': '2026-01-01T00:00:05.000Z', 'stacks': ["
	"  {'bytes': 134217728, 'count': 1, 'cell': 'In [3]', 'frames': ["
	"   {'function': 'Kernel.dispatch_queue', 'file': '/py/kernelbase.py',"
	"    'line': 510, 'native': false},"
	"   {'function': '<module>', 'file': '/tmp/ipykernel_42/3507.py',"
	"    'line': 1, 'native': false},"
	"   {'function': 'DataFrame.merge', 'file': '/py/pandas/frame.py',"
	"    'line': 10090, 'native': false},"
	"   {'function': 'grow;fast', 'file': null, 'line': null,"
	"    'module': '/lib/libc.so.6', 'offset': 16, 'native': true}]},"
	"  {'bytes': 50000000, 'count': 2, 'cell': 'In [1]', 'frames': ["
	"   {'function': '<module>', 'file': '/tmp/ipykernel_42/1111.py',"
	"    'line': 2, 'native': false},"
	"   {'function': 'load', 'file': '/home/u/data.py', 'line': 7,"
	"    'native': false},"
	"   {'function': null, 'file': null, 'line': null,"
	"    'module': '/usr/bin/python3.11', 'offset': 4096,"
	"    'native': true}]},"
	"  {'bytes': 15782272, 'count': 2, 'cell': null, 'frames': ["
	"   {'function': '[native thread]', 'file': null, 'line': null,"
	"    'native': false},"
	"   {'function': 'blas_alloc', 'file': null, 'line': null,"
	"    'module': '/lib/libopenblas.so.0', 'offset': 8,"
	"    'native': true}]},"
	"  {'bytes': 0, 'count': 1, 'cell': null, 'frames': []}],"
	"  'cells': ["
	"  {'label': 'In [1]', 'source_head': 'df = load()',"
	"   'file': '/tmp/ipykernel_42/1111.py', 'peak_above_start': 50000000,"
	"   'bytes_at_process_peak': 50000000, 'count': 1200},"
	"  {'label': 'In [3]', 'source_head': 'm = df.merge(df)',"
	"   'file': '/tmp/ipykernel_42/3507.py',"
	"   'peak_above_start': 150000000,"
	"   'bytes_at_process_peak': 134217728, 'count': 10},"
	"  {'label': '(outside cells)', 'source_head': null, 'file': null,"
	"   'peak_above_start': null, 'bytes_at_process_peak': 15782272,"
	"   'count': 5}]},"
	" 'current': {'bytes': 0, 'count': 0, 'at': 'x', 'stacks': [],"
	"  'cells': []}}";

/* A C program's: one native frame per stack, no cells. */
static const char NATIVE[] =
	"{'schema': 'memprof-bpf/snapshot', 'version': 1, 'pid': 7,"
	" 'comm': 'allocs', 'reason': 'end', 'taken_at': 'T',"
	" 'dropped_events': 0, 'peak_cell': null,"
	" 'peak': {'bytes': 3000, 'count': 2, 'at': 'P', 'stacks': ["
	"  {'bytes': 1000, 'count': 1, 'cell': null, 'frames': ["
	"   {'function': 'small', 'module': '/bin/allocs', 'native': true}]},"
	"  {'bytes': 2000, 'count': 1, 'cell': null, 'frames': ["
	"   {'function': 'big', 'module': '/bin/allocs', 'native': true}]}],"
	"  'cells': []},"
	" 'current': {'bytes': 0, 'count': 0, 'at': 'x', 'stacks': []}}";

/* Text with ' for " -> a JSON document (printf-style for one int). */
static json_t *doc_of(const char *fmt, int arg)
{
	char text[8192], *p;
	json_error_t je;
	json_t *doc;

	snprintf(text, sizeof(text), fmt, arg);
	for (p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	doc = json_loads(text, 0, &je);
	cr_assert_not_null(doc, "line %d: %s", je.line, je.text);
	return doc;
}

/* What a printer wrote, in buf. */
#define PRINTED(buf, call)                                 \
	do {                                               \
		FILE *m = fmemopen(buf, sizeof(buf), "w"); \
		cr_assert_not_null(m);                     \
		call;                                      \
		fclose(m);                                 \
	} while (0)

static char out[8192];

Test(report, header_cells_first_then_stacks, .timeout = 10)
{
	json_t *doc = doc_of(NOTEBOOK, 0);
	struct report_opts o = { .top = 10 };

	PRINTED(out, report__text(m, doc, &o));
	cr_assert_str_eq(out, "snapshot of ipykernel (pid 42), reason exit, "
			      "taken "
			      "2026-01-01T00:00:10.000Z\n"
			      "command: python3 -m ipykernel\n"
			      "peak: 190.7 MiB in 5 blocks at "
			      "2026-01-01T00:00:05.000Z, "
			      "reached in In [3]\n"
			      "\n"
			      "cells at the peak:\n"
			      "  CELL                AT PEAK  SHARE     +ABOVE "
			      " ALLOCS  SOURCE\n"
			      "* In [3]            128.0 MiB  67.1%  143.1 MiB "
			      "     10  m = "
			      "df.merge(df)\n"
			      "  In [1]             47.7 MiB  25.0%   47.7 MiB "
			      "   1.2k  df = "
			      "load()\n"
			      "  (outside cells)    15.1 MiB   7.9%          - "
			      "      5\n"
			      "  (* running when the peak was reached)\n"
			      "\n"
			      "top 4 stacks at the peak (of 4):\n"
			      "    #      BYTES  SHARE  BLOCKS  CELL         "
			      "    WHERE\n"
			      "    1  128.0 MiB  67.1%       1  In [3]       "
			      "    frame.py:10090 "
			      "DataFrame.merge\n"
			      "    2   47.7 MiB  25.0%       2  In [1]       "
			      "    data.py:7 load\n"
			      "    3   15.1 MiB   7.9%       2  -            "
			      "    [native "
			      "thread]\n"
			      "    4        0 B   0.0%       1  -            "
			      "    (no frames)\n");
	json_decref(doc);
}

Test(report, dropped_events_warned_in_header, .timeout = 10)
{
	json_t *doc = doc_of(NOTEBOOK, 12);
	struct report_opts o = { .by = REPORT_BY_CELL, .top = 1 };

	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nwarning: 12 events were dropped (ring "
			      "buffer full): the figures may be off\n"),
		  "%s", out);
	/* --top 1 --by cell: the peak's cell only, no stacks. */
	cr_assert(strstr(out, "* In [3] "));
	cr_assert_null(strstr(out, "In [1]"));
	cr_assert_null(strstr(out, "stacks"));
	json_decref(doc);
}

Test(report, by_file_sums_innermost_python_file, .timeout = 10)
{
	json_t *doc = doc_of(NOTEBOOK, 0);
	struct report_opts o = { .by = REPORT_BY_FILE, .top = 10 };

	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nbytes at the peak by file (innermost Python "
			      "frame):\n"
			      "       BYTES  SHARE  BLOCKS  STACKS  FILE\n"
			      "   128.0 MiB  67.1%       1       1  "
			      "/py/pandas/frame.py\n"
			      "    47.7 MiB  25.0%       2       1  "
			      "/home/u/data.py\n"
			      "    15.1 MiB   7.9%       2       1  [native "
			      "thread]\n"
			      "         0 B   0.0%       1       1  (unknown "
			      "module)\n"),
		  "%s", out);
	json_decref(doc);
}

Test(report, native_program_has_no_cell_table, .timeout = 10)
{
	json_t *doc = doc_of(NATIVE, 0);
	struct report_opts o = { .top = 10 };

	PRINTED(out, report__text(m, doc, &o));
	cr_assert_null(strstr(out, "cells"));
	/* Ranked by bytes even if the file is not. */
	cr_assert(strstr(out, "    1    2.0 KiB  66.7%       1  -          "
			      "      big (allocs)\n"
			      "    2     1000 B  33.3%       1  -          "
			      "      small (allocs)\n"),
		  "%s", out);
	json_decref(doc);
	doc = doc_of(NATIVE, 0);
	o.by = REPORT_BY_CELL;
	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nno notebook cells in this snapshot\n"));
	json_decref(doc);
}

/* The kernel's own frames below a cell's code are left out. */
Test(report, folded_root_first_cell_first, .timeout = 10)
{
	json_t *doc = doc_of(NOTEBOOK, 0);

	PRINTED(out, folded__write(m, doc));
	cr_assert_str_eq(out, "In [3];<module> (3507.py:1);DataFrame.merge "
			      "(frame.py:10090);grow:fast (libc.so.6) "
			      "134217728\n"
			      "In [1];<module> (1111.py:2);load (data.py:7);"
			      "[unknown] (python3.11) 50000000\n"
			      "[native thread];blas_alloc (libopenblas.so.0) "
			      "15782272\n");
	json_decref(doc);
}

/* ---- the subcommand on files -------------------------------------------- */

static char path[64];

static void write_text(const char *text, size_t len)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/memprof-report-XXXXXX");
	cr_assert_geq(mkstemp(path), 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* Run report__main; returns the exit code, stderr in err. */
static int run_report(char *err, size_t size, const char *a1, const char *a2)
{
	char *argv[] = { "report", (char *)a1, (char *)a2, NULL };
	struct capture ce, co;
	char ignored[8192];
	int rc;

	capture_begin(&co, 1);
	capture_begin(&ce, 2);
	rc = report__main(a2 ? 3 : 2, argv);
	capture_end(&ce, err, size);
	capture_end(&co, ignored, sizeof(ignored));
	return rc;
}

Test(report, truncated_file_one_line_exit_2, .timeout = 10)
{
	json_t *doc = doc_of(NOTEBOOK, 0);
	char *text = json_dumps(doc, JSON_INDENT(1)), err[1024];

	write_text(text, strlen(text) / 2);
	cr_assert_eq(run_report(err, sizeof(err), path, NULL), 2);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "not a valid snapshot"), "%s", err);
	unlink(path);
	free(text);
	json_decref(doc);
}

Test(report, missing_file_and_bad_options, .timeout = 10)
{
	char err[1024];

	cr_assert_eq(run_report(err, sizeof(err), "/nonexistent/x.json", NULL),
		     2);
	cr_assert_str_eq(err, "memprof-bpf: /nonexistent/x.json: No such file "
			      "or directory\n");
	cr_assert_eq(run_report(err, sizeof(err), "--by=line", "x.json"), 2);
	cr_assert_str_eq(err, "memprof-bpf: --by wants cell, stack or file, "
			      "not 'line'\n");
	cr_assert_eq(run_report(err, sizeof(err), "--top=0", "x.json"), 2);
	cr_assert_eq(count_lines(err), 1);
	cr_assert_eq(run_report(err, sizeof(err), "a.json", "b.json"), 2);
	cr_assert_eq(count_lines(err), 1);
}

Test(report, not_a_snapshot_one_line_exit_2, .timeout = 10)
{
	char err[1024];

	write_text("{\"schema\": \"other\"}", 19);
	cr_assert_eq(run_report(err, sizeof(err), path, NULL), 2);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "not a memprof-bpf snapshot"), "%s", err);
	unlink(path);
}

/* ---- regressions found by tests/fuzz ------------------------------------ */

/*
 * Byte and block counts at the top of int64 (a damaged file): --by file's
 * sums clamp instead of overflowing.
 */
Test(report, by_file_sums_clamp_at_int64_max, .timeout = 10)
{
	static const char HUGE[] =
		"{'schema': 'memprof-bpf/snapshot', 'version': %d,"
		" 'peak': {'bytes': 9223372036854775807, 'stacks': ["
		"  {'bytes': 9223372036854775807, 'count': 9223372036854775807,"
		"   'frames': [{'function': 'f', 'module': '/bin/x',"
		"   'native': true}]},"
		"  {'bytes': 9223372036854775807, 'count': 9223372036854775807,"
		"   'frames': [{'function': 'g', 'module': '/bin/x',"
		"   'native': true}]}]},"
		" 'current': {'bytes': 0, 'stacks': []}}";
	json_t *doc = doc_of(HUGE, 1);
	struct report_opts o = { .by = REPORT_BY_FILE, .top = 10 };

	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "  8192.0 PiB 100.0% 9223372036854775807       2"
			      "  /bin/x\n"),
		  "%s", out);
	json_decref(doc);
}

Test(report, oom_kill_named_in_header, .timeout = 10)
{
	json_t *doc = doc_of(NATIVE, 0);
	struct report_opts o = { .by = REPORT_BY_STACK, .top = 1 };

	json_object_set_new(doc, "oom",
			    json_pack("{s:s, s:I}", "memory_cgroup", "/u/nb",
				      "limit_bytes", (json_int_t)314572800));
	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nkilled by the kernel's OOM killer: memory "
			      "cgroup /u/nb, limit 300.0 MiB\n"),
		  "%s", out);
	/* No limit: the whole machine ran out. */
	json_object_set_new(json_object_get(doc, "oom"), "limit_bytes",
			    json_null());
	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "memory cgroup /u/nb, no limit (the machine "
			      "ran out)\n"),
		  "%s", out);
	/* Not an OOM kill: no such line. */
	json_object_set_new(doc, "oom", json_null());
	PRINTED(out, report__text(m, doc, &o));
	cr_assert_null(strstr(out, "OOM"), "%s", out);
	json_decref(doc);
}

/* What the process held when the agent came, in the header. */
Test(report, census_in_header, .timeout = 10)
{
	json_t *doc = doc_of(NATIVE, 0);
	struct report_opts o = { .by = REPORT_BY_STACK, .top = 1 };

	json_object_set_new(doc, "census",
			    json_pack("{s:s, s:f, s:s, s:I, s:{s:I, s:I, s:I, "
				      "s:I}, s:n}",
				      "state", "done", "took_ms", 12.5, "glibc",
				      "2.36", "blocks", (json_int_t)3, "bytes",
				      "heap", (json_int_t)(1 << 20), "mmapped",
				      (json_int_t)(3 << 20), "python",
				      (json_int_t)0, "anon", (json_int_t)4096,
				      "warning"));
	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nbefore attach: 4.0 MiB held when the agent "
			      "came (heap 1.0 MiB, mmapped 3.0 MiB, Python "
			      "objects 0 B, other anonymous 4.0 KiB)\n"),
		  "%s", out);
	/* --no-census: said, not counted. */
	json_object_set_new(doc, "census",
			    json_pack("{s:s, s:n}", "state", "off", "warning"));
	PRINTED(out, report__text(m, doc, &o));
	cr_assert(strstr(out, "\nbefore attach: not counted (census off)\n"),
		  "%s", out);
	/* A process seen from its start: no line. */
	json_object_set_new(doc, "census", json_null());
	PRINTED(out, report__text(m, doc, &o));
	cr_assert_null(strstr(out, "before attach"), "%s", out);
	json_decref(doc);
}

/*
 * The timeline under the header: eight buckets of 100 ms, one column
 * each, heights against the highest; the peak's column marked; In [1]
 * over columns 0-2, In [12] from column 3, still running.
 */
static const char TIMELINE[] =
	"{'timeline': {'start_at': '2026-01-01T00:00:00.000Z',"
	" 'interval_ms': 100, 'live': [0, 100, 200, 400, 800, 800, 400, 100],"
	" 'peak': {'at_ms': 500, 'bytes': 800},"
	" 'cells': [{'label': 'In [1]', 'start_ms': 0, 'end_ms': 250},"
	"  {'label': 'In [12]', 'start_ms': 300, 'end_ms': null}]}}";

Test(report, timeline_sparkline_peak_and_cells, .timeout = 10)
{
	json_t *doc = doc_of(TIMELINE, 0);

	PRINTED(out, report__timeline(m, doc));
	cr_assert_str_eq(out, "timeline: 0.8 s, 0.1 s a column (its highest "
			      "live "
			      "bytes)\n"
			      "   \u2581\u2582\u2584\u2588\u2588\u2584\u2581\n"
			      "       ^ peak 800 B at +0.5 s\n"
			      "  1--12---  cells: In [N] from its start\n");
	json_decref(doc);
}

/* Long runs: 60 columns, each the highest of its buckets; none: nothing. */
Test(report, timeline_long_run_keeps_spikes, .timeout = 10)
{
	json_t *doc = doc_of(TIMELINE, 0), *live = json_array();
	const char *line;
	int i;

	for (i = 0; i < 1000; i++)
		json_array_append_new(live, json_integer(i == 500 ? 5000 : 10));
	json_object_set_new(json_object_get(doc, "timeline"), "live", live);
	json_object_set_new(json_object_get(doc, "timeline"), "interval_ms",
			    json_integer(1000));
	json_object_del(json_object_get(doc, "timeline"), "cells");
	PRINTED(out, report__timeline(m, doc));
	cr_assert(strncmp(out, "timeline: 16m40s, 16.7 s a column", 33) == 0,
		  "%s", out);
	line = strchr(out, '\n') + 3;
	/* 30 lowest columns (3 bytes each), the spike, 29 more. */
	for (i = 0; i < 60; i++)
		cr_assert(strncmp(line + 3 * i, i == 30 ? "\u2588" : "\u2581",
				  3) == 0,
			  "column %d: %s", i, out);
	cr_assert_eq(count_lines(out), 3);
	json_decref(doc);

	doc = doc_of(NATIVE, 0);
	out[0] = 'x';
	PRINTED(out, report__timeline(m, doc));
	cr_assert_eq(out[0], 'x', "%s", out); /* nothing written */
	json_decref(doc);
}
