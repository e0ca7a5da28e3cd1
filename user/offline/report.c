// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "census/census.h"
#include "lib/text.h"
#include "format/folded.h"
#include "format/html.h"
#include "format/pprof.h"
#include "format/snapdoc.h"
#include "format/snapfile.h"
#include "format/snapv2.h"
#include "lib/log.h"
#include "lib/args.h"
#include "report.h"

#define SPARK_COLS 60 /* the sparkline's width at most */

/* ---- text tables -------------------------------------------------------- */

static double share(json_int_t part, json_int_t whole)
{
	return whole > 0 ? 100.0 * part / whole : 0;
}

/* An OOM kill is the headline: which cgroup ran out, and at what limit. */
static void oom_line(FILE *out, json_t *oom)
{
	json_t *limit = json_object_get(oom, "limit_bytes");
	char lim[16];

	if (!json_is_object(oom))
		return;
	text__bytes(json_integer_value(limit), lim, sizeof(lim));
	fprintf(out,
		"killed by the kernel's OOM killer: memory cgroup %s, %s%s\n",
		snapdoc__str(oom, "memory_cgroup") ?: "?",
		json_is_integer(limit) ? "limit "
				       : "no limit (the machine ran out)",
		json_is_integer(limit) ? lim : "");
}

/* What the process held when the agent attached (the census), if read. */
static void census_line(FILE *out, json_t *c)
{
	json_t *bytes = json_object_get(c, "bytes");
	const char *state = snapdoc__str(c, "state");
	const char *warning = snapdoc__str(c, "warning");
	json_int_t sum = 0;
	char b[16];
	int k;

	if (!json_is_object(c))
		return;
	if (!state || strcmp(state, "done") != 0) {
		fprintf(out, "before attach: not counted (census %s%s%s)\n",
			state ?: "?", warning ? ": " : "", warning ?: "");
		return;
	}
	for (k = 0; k < CENSUS_KINDS; k++)
		sum += snapdoc__int(bytes, census__kind_key(k));
	text__bytes(sum, b, sizeof(b));
	fprintf(out, "before attach: %s held when the agent came (", b);
	for (k = 0; k < CENSUS_KINDS; k++) {
		text__bytes(snapdoc__int(bytes, census__kind_key(k)), b,
			    sizeof(b));
		fprintf(out, "%s%s %s", k ? ", " : "", census__kind_name(k), b);
	}
	fprintf(out, ")\n");
	/* Files before 2026-12-05 repeat the prefix in the warning. */
	if (warning && !strncmp(warning, "census: ", 8))
		warning += 8;
	if (warning)
		fprintf(out, "warning: census: %s\n", warning);
}

static void header(FILE *out, json_t *doc)
{
	json_t *peak = json_object_get(doc, "peak");
	const char *cell = snapdoc__str(doc, "peak_cell");
	char bytes[16];

	text__bytes(snapdoc__int(peak, "bytes"), bytes, sizeof(bytes));
	fprintf(out, "snapshot of %s (pid %lld), reason %s, taken %s\n",
		snapdoc__str(doc, "comm") ?: "?",
		(long long)snapdoc__int(doc, "pid"),
		snapdoc__str(doc, "reason") ?: "?",
		snapdoc__str(doc, "taken_at") ?: "?");
	if (snapdoc__str(doc, "cmdline"))
		fprintf(out, "command: %s\n", snapdoc__str(doc, "cmdline"));
	fprintf(out, "peak: %s in %lld blocks at %s", bytes,
		(long long)snapdoc__int(peak, "count"),
		snapdoc__str(peak, "at") ?: "?");
	if (cell)
		fprintf(out, ", reached in %s", cell);
	fputc('\n', out);
	oom_line(out, json_object_get(doc, "oom"));
	census_line(out, json_object_get(doc, "census"));
	if (snapdoc__int(doc, "dropped_events") > 0)
		fprintf(out,
			"warning: %lld events were dropped (ring buffer full): "
			"the figures may be off\n",
			(long long)snapdoc__int(doc, "dropped_events"));
}

/* ---- the timeline ------------------------------------------------------- */

static const char *const spark[] = { "\u2581", "\u2582", "\u2583", "\u2584",
				     "\u2585", "\u2586", "\u2587", "\u2588" };

/* A duration as people read one: 2.3 s, 12m05s, 3h07m. */
static void duration(double ms, char *buf, size_t size)
{
	long long s;

	if (!(ms > 0)) /* a damaged file's: no negative times, no NaN */
		ms = 0;
	if (ms > 1e15) /* 30,000 years: the cast below stays defined */
		ms = 1e15;
	s = (long long)(ms / 1000);
	if (ms < 60000)
		snprintf(buf, size, "%.1f s", ms / 1000);
	else if (s < 3600)
		snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

/* The column an offset falls in, of cols spanning span_ms. */
static int column(double ms, double span_ms, int cols)
{
	double c = ms / span_ms * cols;

	return c < 0 || c != c ? 0 : c >= cols ? cols - 1 : (int)c;
}

/* A bucket's bytes; a damaged file's negative ones count as none. */
static double bucket_bytes(json_t *live, size_t i)
{
	json_int_t v = json_integer_value(json_array_get(live, i));

	return v > 0 ? (double)v : 0;
}

/*
 * Each column the highest bucket of its share (memory is about the top),
 * one of eight heights of the highest of all; blank for nothing live.
 */
static void spark_line(FILE *out, json_t *live, int cols, double top)
{
	size_t n = json_array_size(live), i;
	int c, level;

	fputs("  ", out);
	for (c = 0; c < cols; c++) {
		double v = 0;

		for (i = c * n / cols; i < (c + 1) * n / cols; i++)
			v = bucket_bytes(live, i) > v ? bucket_bytes(live, i)
						      : v;
		level = (int)(8 * v / top + 0.999999) - 1;
		fputs(v <= 0 ? " "
			     : spark[level < 0	 ? 0
				     : level > 7 ? 7
						 : level],
		      out);
	}
	fputc('\n', out);
}

/*
 * Under the columns: each cell run's span, its number where it starts
 * and '-' to its end (the run still going: to the end), when the number
 * fits in its span; else a '|' where it starts.
 */
static void cells_line(FILE *out, json_t *cells, double span, int cols)
{
	char line[SPARK_COLS + 1], num[24];
	json_t *c;
	size_t i;
	int a, b, k, len;

	memset(line, ' ', cols);
	line[cols] = '\0';
	json_array_foreach(cells, i, c)
	{
		json_t *end = json_object_get(c, "end_ms");
		const char *label = snapdoc__str(c, "label") ?: "?";

		a = column(snapdoc__int(c, "start_ms"), span, cols);
		b = json_is_integer(end)
			    ? column(json_integer_value(end), span, cols)
			    : cols - 1;
		for (k = a; k <= b; k++)
			line[k] = '-';
		len = sscanf(label, "In [%23[0-9]]", num) == 1 ? strlen(num)
							       : 0;
		if (len && b - a + 1 >= len)
			memcpy(&line[a], num, len);
		else
			line[a] = '|';
	}
	fprintf(out, "  %s  cells: In [N] from its start\n", line);
}

/*
 * Live bytes over time as a sparkline (SPARK_COLS columns at most), the
 * peak marked under it, then the cell runs; nothing for a snapshot
 * without a timeline.
 */
void report__timeline(FILE *out, json_t *doc)
{
	json_t *tl = json_object_get(doc, "timeline");
	json_t *live = json_object_get(tl, "live"), *peak;
	json_t *cells = json_object_get(tl, "cells");
	json_int_t every = snapdoc__int(tl, "interval_ms");
	size_t n = json_array_size(live), i;
	int cols = n < SPARK_COLS ? (int)n : SPARK_COLS, at;
	double span = (double)n * every, top = 0;
	char len[48], col[48], bytes[16], when[48];

	if (!n || every <= 0)
		return;
	for (i = 0; i < n; i++)
		top = bucket_bytes(live, i) > top ? bucket_bytes(live, i) : top;
	peak = json_object_get(tl, "peak");
	duration(span, len, sizeof(len));
	duration(span / cols, col, sizeof(col));
	text__bytes(snapdoc__int(peak, "bytes"), bytes, sizeof(bytes));
	duration(snapdoc__int(peak, "at_ms"), when, sizeof(when));
	fprintf(out, "timeline: %s, %s a column (its highest live bytes)\n",
		len, col);
	spark_line(out, live, cols, top > 0 ? top : 1);
	at = column(snapdoc__int(peak, "at_ms"), span, cols);
	fprintf(out, "  %*s^ peak %s at +%s\n", at, "", bytes, when);
	if (json_array_size(cells))
		cells_line(out, cells, span, cols);
}

struct row {
	json_t *v;
	json_int_t bytes;
	size_t order; /* position in the file: ties keep it */
	int first; /* 1: pinned to the top (the cell at the peak) */
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->first != y->first)
		return y->first - x->first;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Rows of an array ranked by "key" bytes, largest first; the element
 * whose label is `pinned` goes first. Caller frees.
 */
static struct row *ranked(json_t *arr, const char *key, const char *pinned)
{
	size_t i, n = json_array_size(arr);
	struct row *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return NULL;
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		const char *label = snapdoc__str(e, "label");

		r[i] = (struct row){ e, snapdoc__int(e, key), i,
				     pinned && label &&
					     !strcmp(label, pinned) };
	}
	qsort(r, n, sizeof(*r), row_cmp);
	return r;
}

/* One cell run: its bytes at the peak, how far it pushed, its source. */
static void cell_row(FILE *out, const struct row *r, json_int_t peak)
{
	json_t *above = json_object_get(r->v, "peak_above_start");
	const char *src = snapdoc__str(r->v, "source_head");
	char at[16], ab[16], allocs[16];

	if (!src)
		src = text__base_name(snapdoc__str(r->v, "file"));
	text__bytes(r->bytes, at, sizeof(at));
	text__bytes(json_integer_value(above), ab, sizeof(ab));
	text__count(snapdoc__int(r->v, "count"), allocs, sizeof(allocs));
	fprintf(out, "%c %-16.16s %10s %5.1f%% %10s %7s%s%.60s\n",
		r->first ? '*' : ' ', snapdoc__str(r->v, "label") ?: "?", at,
		share(r->bytes, peak), json_is_integer(above) ? ab : "-",
		allocs, src ? "  " : "", src ?: "");
}

/* The cell that held the peak first: it is the one to look at. */
static void cell_table(FILE *out, json_t *doc, int top)
{
	json_t *peak = json_object_get(doc, "peak");
	json_t *cells = json_object_get(peak, "cells");
	const char *pc = snapdoc__str(doc, "peak_cell");
	struct row *r;
	size_t i, n = json_array_size(cells);

	if (!n || !(r = ranked(cells, "bytes_at_process_peak", pc)))
		return;
	fprintf(out, "\ncells at the peak:\n");
	fprintf(out, "  %-16s %10s %6s %10s %7s  %s\n", "CELL", "AT PEAK",
		"SHARE", "+ABOVE", "ALLOCS", "SOURCE");
	for (i = 0; i < n && i < (size_t)top; i++)
		cell_row(out, &r[i], snapdoc__int(peak, "bytes"));
	if (pc)
		fprintf(out, "  (* running when the peak was reached)\n");
	free(r);
}

static void stack_table(FILE *out, json_t *doc, int top)
{
	json_t *peak = json_object_get(doc, "peak");
	json_t *stacks = json_object_get(peak, "stacks");
	size_t i, n = json_array_size(stacks);
	struct row *r = ranked(stacks, "bytes", NULL);

	if (!r)
		return;
	fprintf(out, "\ntop %zu stacks at the peak (of %zu):\n",
		n < (size_t)top ? n : (size_t)top, n);
	fprintf(out, "  %3s %10s %6s %7s  %-16s %s\n", "#", "BYTES", "SHARE",
		"BLOCKS", "CELL", "WHERE");
	for (i = 0; i < n && i < (size_t)top; i++) {
		char b[16], where[512];

		text__bytes(r[i].bytes, b, sizeof(b));
		snapdoc__where(r[i].v, where, sizeof(where));
		fprintf(out, "  %3zu %10s %5.1f%% %7lld  %-16.16s %s\n", i + 1,
			b, share(r[i].bytes, snapdoc__int(peak, "bytes")),
			(long long)snapdoc__int(r[i].v, "count"),
			snapdoc__str(r[i].v, "cell") ?: "-", where);
	}
	free(r);
}

/* The file a stack's bytes are charged to: its innermost Python frame's. */
static const char *file_of(json_t *stack)
{
	json_t *py = snapdoc__leaf_python(stack);
	json_t *frames = json_object_get(stack, "frames");
	json_t *leaf = json_array_get(frames, json_array_size(frames) - 1);

	/* Markers such as "[native thread]" have no file: they name themselves. */
	if (py)
		return snapdoc__str(py, "file") ?: snapdoc__str(py, "function") ?: "?";
	return snapdoc__str(leaf, "module") ?: "(unknown module)";
}

/*
 * A damaged file's bytes can be any int64: their sum clamps instead of
 * overflowing, undefined behaviour (UBSan, tests/fuzz).
 */
static long long clamp_add(long long x, long long y)
{
	long long r;

	if (__builtin_add_overflow(x, y, &r))
		return x < 0 ? LLONG_MIN : LLONG_MAX;
	return r;
}

/*
 * Sum stacks per file: a JSON object is the hash map, one
 * {"label", "bytes_at_process_peak", "count", "stacks"} per file.
 */
static json_t *group_by_file(json_t *stacks)
{
	json_t *groups = json_object(), *arr = json_array(), *s, *g;
	const char *file;
	long long bytes, count;
	size_t i;

	json_array_foreach(stacks, i, s)
	{
		file = file_of(s);
		g = json_object_get(groups, file);
		if (!g) {
			g = json_pack("{s:s, s:I, s:I, s:I}", "label", file,
				      "bytes_at_process_peak", (json_int_t)0,
				      "count", (json_int_t)0, "stacks",
				      (json_int_t)0);
			json_object_set_new(groups, file, g);
			json_array_append(arr, g);
		}
		bytes = clamp_add(snapdoc__int(g, "bytes_at_process_peak"),
				  snapdoc__int(s, "bytes"));
		count = clamp_add(snapdoc__int(g, "count"),
				  snapdoc__int(s, "count"));
		json_object_set_new(g, "bytes_at_process_peak",
				    json_integer(bytes));
		json_object_set_new(g, "count", json_integer(count));
		json_object_set_new(
			g, "stacks",
			json_integer(snapdoc__int(g, "stacks") + 1));
	}
	json_decref(groups);
	return arr;
}

static void file_table(FILE *out, json_t *doc, int top)
{
	json_t *peak = json_object_get(doc, "peak");
	json_t *files = group_by_file(json_object_get(peak, "stacks"));
	size_t i, n = json_array_size(files);
	struct row *r = ranked(files, "bytes_at_process_peak", NULL);

	if (r) {
		fprintf(out, "\nbytes at the peak by file (innermost Python "
			     "frame):\n");
		fprintf(out, "  %10s %6s %7s %7s  %s\n", "BYTES", "SHARE",
			"BLOCKS", "STACKS", "FILE");
	}
	for (i = 0; r && i < n && i < (size_t)top; i++) {
		char b[16];

		text__bytes(r[i].bytes, b, sizeof(b));
		fprintf(out, "  %10s %5.1f%% %7lld %7lld  %s\n", b,
			share(r[i].bytes, snapdoc__int(peak, "bytes")),
			(long long)snapdoc__int(r[i].v, "count"),
			(long long)snapdoc__int(r[i].v, "stacks"),
			snapdoc__str(r[i].v, "label"));
	}
	free(r);
	json_decref(files);
}

void report__text(FILE *out, json_t *doc, const struct report_opts *o)
{
	json_t *cells = json_object_get(json_object_get(doc, "peak"), "cells");

	header(out, doc);
	report__timeline(out, doc);
	if (o->by == REPORT_BY_CELL && !json_array_size(cells))
		fprintf(out, "\nno notebook cells in this snapshot\n");
	if (o->by == REPORT_BY_ALL || o->by == REPORT_BY_CELL)
		cell_table(out, doc, o->top);
	if (o->by == REPORT_BY_ALL || o->by == REPORT_BY_STACK)
		stack_table(out, doc, o->top);
	if (o->by == REPORT_BY_FILE)
		file_table(out, doc, o->top);
}

/* ---- the subcommand ----------------------------------------------------- */

static const char report_usage[] =
	"Usage: memprof-bpf report FILE [--by cell|stack|file] [--top N]\n"
	"                          [--format "
	"text|folded|html|json|snapshot|pprof]\n"
	"Print a saved snapshot (either version, plain or gzipped): the cells\n"
	"and the largest stacks at the peak, folded stacks for flamegraph.pl,\n"
	"inferno and speedscope, one self-contained HTML page (flame graph\n"
	"and cell table), the document as plain JSON with every frame written\n"
	"out (for jq), as a compact gzipped snapshot (version 2), or as\n"
	"pprof's gzipped profile (go tool pprof, speedscope, Pyroscope):\n"
	"  memprof-bpf report FILE --format html > peak.html\n"
	"  memprof-bpf report FILE --format json | jq .peak.bytes\n"
	"  memprof-bpf report FILE --format pprof > peak.pb.gz\n";

int report__parse_top(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > 1000000) {
		log_err("--top wants a number of rows, not '%s'", arg);
		return -1;
	}
	return (int)v;
}

/* The orders of enum report_by (after ALL) and enum report_format. */
static const char *const by_names[] = { "cell", "stack", "file" };
static const char *const format_names[] = { "text", "folded",	"html",
					    "json", "snapshot", "pprof" };

static int parse_by(const char *arg, struct report_opts *o)
{
	int i = args__choice("--by", arg, by_names,
			     sizeof(by_names) / sizeof(by_names[0]));

	if (i < 0)
		return -1;
	o->by = (enum report_by)(REPORT_BY_CELL + i);
	return 0;
}

static int parse_format(const char *arg, struct report_opts *o)
{
	int i = args__choice("--format", arg, format_names,
			     sizeof(format_names) / sizeof(format_names[0]));

	if (i < 0)
		return -1;
	o->format = (enum report_format)i;
	return 0;
}

/* Options, then exactly one FILE. Returns -1 (error), 1 (help) or 0. */
static int parse_args(int argc, char **argv, struct report_opts *o,
		      const char **file)
{
	static const struct option longopts[] = {
		{ "by", required_argument, NULL, 'B' },
		{ "top", required_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct report_opts){ .top = 10 };
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hn:", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(report_usage, stdout);
			return 1;
		}
		if (c == 'n' && (o->top = report__parse_top(optarg)) < 0)
			return -1;
		if ((c == 'B' && parse_by(optarg, o)) ||
		    (c == 'F' && parse_format(optarg, o)))
			return -1;
		if (c == '?' || c == ':') {
			log_err("bad option '%s'; try report --help",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind != argc - 1) {
		log_err("report wants one snapshot file; try report --help");
		return -1;
	}
	*file = argv[optind];
	return 0;
}

/*
 * The document itself: version 1's shape as indented JSON (what scripts
 * and jq read), or version 2, compact and gzipped (an old file made small).
 */
static int print_document(json_t *doc, bool compact)
{
	json_t *v2 = compact ? snapv2__pack(doc) : NULL;
	char *buf = NULL;
	size_t len;
	int err = compact && !v2 ? -ENOMEM
				 : snapfile__encode(v2 ? v2 : doc, &buf, &len);

	json_decref(v2);
	if (!err && fwrite(buf, 1, len, stdout) != len)
		err = -EIO;
	if (!err && !compact)
		fputc('\n', stdout);
	free(buf);
	return err;
}

int report__main(int argc, char **argv)
{
	struct report_opts o;
	const char *file;
	json_t *doc;
	int err = parse_args(argc, argv, &o, &file);

	if (err)
		return err > 0 ? 0 : 2;
	if ((o.format == REPORT_PPROF || o.format == REPORT_SNAPSHOT) &&
	    isatty(STDOUT_FILENO)) {
		log_err("report: %s is gzipped bytes; send it to a file "
			"(> FILE%s)",
			format_names[o.format],
			o.format == REPORT_PPROF ? ".pb.gz" : ".json.gz");
		return 2;
	}
	doc = snapdoc__load(file);
	if (!doc)
		return 2;
	if (o.format != REPORT_TEXT && snapdoc__int(doc, "dropped_events") > 0)
		log_warn("%s: %lld events were dropped: the figures may be off",
			 file, (long long)snapdoc__int(doc, "dropped_events"));
	if (o.format == REPORT_JSON || o.format == REPORT_SNAPSHOT)
		err = print_document(doc, o.format == REPORT_SNAPSHOT);
	else if (o.format == REPORT_FOLDED)
		folded__write(stdout, doc);
	else if (o.format == REPORT_HTML)
		html__write(stdout, doc);
	else if (o.format == REPORT_PPROF)
		err = pprof__write(stdout, doc);
	else
		report__text(stdout, doc, &o);
	json_decref(doc);
	if (err) {
		log_err("report: cannot write the output: %s", strerror(-err));
		return 1;
	}
	if (fflush(stdout) || ferror(stdout)) {
		log_err("report: cannot write the output: %s", strerror(errno));
		return 1;
	}
	return 0;
}
