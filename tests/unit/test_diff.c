// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <jansson.h>
#include "offline/diff.h"
#include "unit.h"

/* Frames, written with ' for ": a cell's code lives in ipykernel_<pid>. */
#define LOAD(pid)                                                          \
	"[{'function': '<module>', 'file': '/tmp/ipykernel_" pid           \
	"/1111.py', 'line': 2, 'native': false},"                          \
	" {'function': 'load', 'file': '/home/u/data.py', 'line': 7,"      \
	"  'native': false},"                                              \
	" {'function': 'malloc', 'module': '/lib/libc.so.6', 'offset': 9," \
	"  'address': '0x7f0000000009', 'native': true}]"
#define MERGE(pid, addr)                                             \
	"[{'function': '<module>', 'file': '/tmp/ipykernel_" pid     \
	"/3507.py', 'line': 1, 'native': false},"                    \
	" {'function': 'merge', 'file': '/py/frame.py', 'line': 10," \
	"  'native': false},"                                        \
	" {'function': null, 'module': '/usr/bin/python3.11',"       \
	"  'offset': 4096, 'address': '" addr "', 'native': true}]"
#define NATIVE(fn) \
	"[{'function': '" fn "', 'module': '/bin/x', 'native': true}]"
/* clang-format off */
#define STACK(bytes, cell, frames) \
	"{'bytes': " bytes ", 'count': 1, 'cell': " cell ", 'frames': " frames "}"
#define CELL(label, src, bytes) \
	"{'label': '" label "', 'source_head': " src ", " \
	"'bytes_at_process_peak': " bytes "}"
/* clang-format on */
#define SNAP(pid, bytes, stacks, cells)                                    \
	"{'schema': 'memprof-bpf/snapshot', 'version': 1, 'pid': " pid     \
	", 'comm': 'ipykernel', 'peak': {'bytes': " bytes ", 'at': 'T" pid \
	"', 'stacks': [" stacks "], 'cells': [" cells "]},"                \
	" 'current': {'bytes': 0, 'stacks': []}}"

/*
 * Run A: load 1 MB, merge 2 MB, an old cache 1 MB outside cells.
 * Run B (another kernel, cells renumbered): load the same, merge 5 MB
 * (twice 2.5 MB from one place), a new index 250 kB, no old cache.
 */
/* clang-format off */
static const char RUN_A[] = SNAP("10", "4000000",
	STACK("1000000", "'In [1]'", LOAD("10")) ", "
	STACK("2000000", "'In [2]'", MERGE("10", "0x401000")) ", "
	STACK("1000000", "null", NATIVE("old_cache")),
	CELL("In [1]", "'df = load()'", "1000000") ", "
	CELL("In [2]", "'m = merge()'", "2000000") ", "
	CELL("(outside cells)", "null", "1000000"));
static const char RUN_B[] = SNAP("20", "6250000",
	STACK("2500000", "'In [5]'", MERGE("20", "0x501000")) ", "
	STACK("2500000", "'In [5]'", MERGE("20", "0x501000")) ", "
	STACK("1000000", "'In [4]'", LOAD("20")) ", "
	STACK("250000", "null", NATIVE("new_index")),
	CELL("In [4]", "'df = load()'", "1000000") ", "
	CELL("In [5]", "'m = merge()'", "5000000") ", "
	CELL("(outside cells)", "null", "250000"));
/* clang-format on */

static json_t *doc_of(const char *quoted)
{
	char *text = strdup(quoted), *p;
	json_error_t je;
	json_t *doc;

	for (p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	doc = json_loads(text, 0, &je);
	cr_assert_not_null(doc, "line %d: %s: %s", je.line, je.text, text);
	free(text);
	return doc;
}

static char out[8192];

static const char *diffed(const char *a, const char *b, int top)
{
	json_t *da = doc_of(a), *db = doc_of(b);
	FILE *m = fmemopen(out, sizeof(out), "w");

	cr_assert_not_null(m);
	diff__print(m, da, db, "a.json", "b.json", top);
	fclose(m);
	json_decref(da);
	json_decref(db);
	return out;
}

Test(diff, cells_by_source_stacks_by_frames, .timeout = 10)
{
	cr_assert_str_eq(diffed(RUN_A, RUN_B, 10),
			 "A: a.json: ipykernel (pid 10), peak 3.8 MiB at T10\n"
			 "B: b.json: ipykernel (pid 20), peak 6.0 MiB at T20\n"
			 "peak: 3.8 MiB -> 6.0 MiB (+2.1 MiB, +56.2%)\n"
			 "\n"
			 "cells, bytes at the peak (matched by source):\n"
			 "       CHANGE          A          B  CELL\n"
			 "     +2.9 MiB    1.9 MiB    4.8 MiB  m = merge()\n"
			 "   -732.4 KiB  976.6 KiB  244.1 KiB  (outside "
			 "cells)\n"
			 "\n"
			 "stacks, bytes at the peak (matched by frames):\n"
			 "       CHANGE          A          B  WHERE\n"
			 "     +2.9 MiB    1.9 MiB    4.8 MiB  frame.py:10 "
			 "merge\n"
			 "   -976.6 KiB  976.6 KiB          -  old_cache (x)\n"
			 "   +244.1 KiB          -  244.1 KiB  new_index "
			 "(x)\n");
}

Test(diff, top_limits_rows_and_counts_the_rest, .timeout = 10)
{
	diffed(RUN_A, RUN_B, 1);
	cr_assert(strstr(out, "  m = merge()\n  (1 more changed)\n"), "%s",
		  out);
	cr_assert(strstr(out, "  frame.py:10 merge\n  (2 more changed)\n"),
		  "%s", out);
}

Test(diff, same_snapshot_no_change, .timeout = 10)
{
	diffed(RUN_A, RUN_A, 10);
	cr_assert(strstr(out, "peak: 3.8 MiB -> 3.8 MiB (0 B, +0.0%)\n"
			      "\n"
			      "cells, bytes at the peak (matched by source):\n"
			      "  no change\n"
			      "\n"
			      "stacks, bytes at the peak (matched by frames):\n"
			      "  no change\n"),
		  "%s", out);
}

Test(diff, stack_key_ignores_addresses_and_kernel_dirs, .timeout = 10)
{
	json_t *a = doc_of(STACK("1", "null", MERGE("10", "0x401000")));
	json_t *b = doc_of(STACK("1", "null", MERGE("20", "0x501000")));
	json_t *c = doc_of(STACK("1", "null", LOAD("10")));
	char *ka = diff__stack_key(a), *kb = diff__stack_key(b),
	     *kc = diff__stack_key(c);

	cr_assert_str_eq(ka, kb);
	cr_assert_str_neq(ka, kc);
	/* A function without a symbol is told apart by its offset. */
	cr_assert(strstr(ka, "N\tpython3.11\t+0x1000\n"), "%s", ka);
	free(ka);
	free(kb);
	free(kc);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

Test(diff, change_units, .timeout = 10)
{
	char b[24];

	diff__fmt_change(1536, b, sizeof(b));
	cr_assert_str_eq(b, "+1.5 KiB");
	diff__fmt_change(-512, b, sizeof(b));
	cr_assert_str_eq(b, "-512 B");
	diff__fmt_change(0, b, sizeof(b));
	cr_assert_str_eq(b, "0 B");
}

/* ---- regressions found by tests/fuzz ------------------------------------ */

/* No stacks in either file: nothing to sort (qsort of a NULL array). */
Test(diff, no_stacks_either_side, .timeout = 10)
{
	diffed(SNAP("1", "0", "", ""), SNAP("2", "0", "", ""), 10);
	cr_assert_str_eq(out, "A: a.json: ipykernel (pid 1), peak 0 B at T1\n"
			      "B: b.json: ipykernel (pid 2), peak 0 B at T2\n"
			      "peak: 0 B -> 0 B (0 B)\n"
			      "\n"
			      "stacks, bytes at the peak (matched by frames):\n"
			      "  no change\n");
}

/*
 * Byte counts at the ends of int64 (a damaged file): sums of one key's
 * stacks and changes between the files clamp instead of overflowing.
 */
Test(diff, extreme_byte_counts_clamp, .timeout = 10)
{
	/* clang-format off */
	diffed(SNAP("1", "-9223372036854775808",
		    STACK("9223372036854775807", "null", NATIVE("f")) ", "
		    STACK("9223372036854775807", "null", NATIVE("f")), ""),
	       SNAP("2", "9223372036854775807",
		    STACK("-9223372036854775808", "null", NATIVE("f")), ""),
	       10);
	/* clang-format on */
	cr_assert(strstr(out, "peak: 8192.0 PiB -> 8192.0 PiB (+8192.0 PiB)\n"),
		  "%s", out);
	cr_assert(strstr(out, "  -8192.0 PiB 8192.0 PiB 8192.0 PiB  f (x)\n"),
		  "%s", out);
}

/* ---- the subcommand on files -------------------------------------------- */

static void write_text(char *path, const char *text, size_t len)
{
	FILE *f;

	strcpy(path, "/tmp/memprof-diff-XXXXXX");
	cr_assert_geq(mkstemp(path), 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

static int run_diff(char *err, size_t size, const char *a, const char *b)
{
	char *argv[] = { "diff", (char *)a, (char *)b, NULL };
	struct capture ce, co;
	char ignored[8192];
	int rc;

	capture_begin(&co, 1);
	capture_begin(&ce, 2);
	rc = diff__main(b ? 3 : 2, argv);
	capture_end(&ce, err, size);
	capture_end(&co, ignored, sizeof(ignored));
	return rc;
}

Test(diff, files_good_truncated_missing, .timeout = 10)
{
	json_t *doc = doc_of(RUN_A);
	char *text = json_dumps(doc, 0), good[32], cut[32], err[1024];

	write_text(good, text, strlen(text));
	write_text(cut, text, strlen(text) / 2);
	cr_assert_eq(run_diff(err, sizeof(err), good, good), 0);
	cr_assert_str_eq(err, "");
	cr_assert_eq(run_diff(err, sizeof(err), good, cut), 2);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, cut), "%s", err);
	cr_assert_eq(run_diff(err, sizeof(err), "/nonexistent.json", good), 2);
	cr_assert_str_eq(err, "memprof-bpf: /nonexistent.json: No such file "
			      "or directory\n");
	cr_assert_eq(run_diff(err, sizeof(err), good, NULL), 2);
	cr_assert_str_eq(err, "memprof-bpf: diff wants two snapshot files; "
			      "try diff --help\n");
	unlink(good);
	unlink(cut);
	free(text);
	json_decref(doc);
}
