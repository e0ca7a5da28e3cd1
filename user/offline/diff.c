// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "lib/text.h"
#include "format/snapdoc.h"
#include "diff.h"
#include "lib/log.h"
#include "report.h"

/* ---- matching keys ------------------------------------------------------ */

/*
 * A notebook cell's code lives in <tmp>/ipykernel_<pid>/<hash>.py: the
 * directory changes with every kernel, the hash (of the source) does not.
 */
/* A missing name compares as "". */
static const char *base_or_empty(const char *path)
{
	return path ? text__base_name(path) : "";
}

static const char *stable_file(const char *file)
{
	if (file && strstr(file, "/ipykernel_"))
		return strrchr(file, '/') + 1;
	return file ? file : "";
}

/*
 * Python frames by file, function and line; native frames by function
 * and library name (addresses move with ASLR; a stripped function by its
 * offset in the file, which does not).
 */
static void key_frame(FILE *k, json_t *f)
{
	const char *fn = snapdoc__str(f, "function");

	if (json_is_false(json_object_get(f, "native"))) {
		fprintf(k, "P\t%s\t%s\t%lld\n",
			stable_file(snapdoc__str(f, "file")), fn ? fn : "",
			(long long)snapdoc__int(f, "line"));
		return;
	}
	fprintf(k, "N\t%s\t", base_or_empty(snapdoc__str(f, "module")));
	if (fn)
		fprintf(k, "%s\n", fn);
	else
		fprintf(k, "+0x%llx\n",
			(unsigned long long)snapdoc__int(f, "offset"));
}

char *diff__stack_key(json_t *stack)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *k = open_memstream(&buf, &len);
	json_t *f;

	if (!k)
		return NULL;
	json_array_foreach(json_object_get(stack, "frames"), i, f)
		key_frame(k, f);
	if (fclose(k)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Cells: the same source is the same cell, whatever its In [N]. */
static const char *cell_key(json_t *cell)
{
	const char *src = snapdoc__str(cell, "source_head");

	return src ? src : snapdoc__str(cell, "label");
}

/* ---- pairing ------------------------------------------------------------ */

/*
 * Byte counts come from the files: a damaged one can hold any int64, and
 * the sum or difference of two such can overflow, undefined behaviour
 * (UBSan, tests/fuzz). Results are clamped to +-LLONG_MAX, so llabs() of
 * one is defined too.
 */
static long long clamp_add(long long x, long long y)
{
	long long r;

	if (__builtin_add_overflow(x, y, &r))
		return x < 0 ? -LLONG_MAX : LLONG_MAX;
	return r < -LLONG_MAX ? -LLONG_MAX : r;
}

static long long clamp_sub(long long x, long long y)
{
	long long r;

	if (__builtin_sub_overflow(x, y, &r))
		return x < 0 ? -LLONG_MAX : LLONG_MAX;
	return r < -LLONG_MAX ? -LLONG_MAX : r;
}

struct delta {
	long long a, b;
	bool in_a, in_b;
	char label[256];
	size_t order;
};

struct deltas {
	struct delta *v;
	size_t n, cap;
	json_t *index; /* key -> position in v */
};

/* The row for key, created on first sight. */
static struct delta *delta_for(struct deltas *d, const char *key,
			       const char *label)
{
	json_t *at = json_object_get(d->index, key);

	if (at)
		return &d->v[json_integer_value(at)];
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		struct delta *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n] = (struct delta){ .order = d->n };
	snprintf(d->v[d->n].label, sizeof(d->v[d->n].label), "%s", label);
	json_object_set_new(d->index, key, json_integer(d->n));
	return &d->v[d->n++];
}

static void add(struct deltas *d, const char *key, const char *label,
		long long bytes, bool side_b)
{
	struct delta *r = key ? delta_for(d, key, label) : NULL;

	if (!r)
		return;
	if (side_b) {
		r->b = clamp_add(r->b, bytes);
		r->in_b = true;
	} else {
		r->a = clamp_add(r->a, bytes);
		r->in_a = true;
	}
}

static void add_cells(struct deltas *d, json_t *doc, bool side_b)
{
	json_t *cells = json_object_get(json_object_get(doc, "peak"), "cells");
	json_t *c;
	size_t i;

	json_array_foreach(cells, i, c)
		add(d, cell_key(c), cell_key(c),
		    snapdoc__int(c, "bytes_at_process_peak"), side_b);
}

static void add_stacks(struct deltas *d, json_t *doc, bool side_b)
{
	json_t *peak = json_object_get(doc, "peak");
	json_t *stacks = json_object_get(peak, "stacks");
	json_t *s;
	size_t i;

	json_array_foreach(stacks, i, s)
	{
		char *key = diff__stack_key(s), where[512];

		snapdoc__where(s, where, sizeof(where));
		add(d, key, where, snapdoc__int(s, "bytes"), side_b);
		free(key);
	}
}

/* Largest change first, either way; ties in the order first seen. */
static int by_change(const void *x, const void *y)
{
	const struct delta *p = x, *q = y;
	long long dp = llabs(clamp_sub(p->b, p->a));
	long long dq = llabs(clamp_sub(q->b, q->a));

	if (dp != dq)
		return dp < dq ? 1 : -1;
	return p->order < q->order ? -1 : p->order > q->order;
}

/* ---- printing ----------------------------------------------------------- */

void diff__fmt_change(long long d, char *buf, size_t size)
{
	char b[16];

	text__bytes(llabs(d), b, sizeof(b));
	snprintf(buf, size, "%s%s", d > 0 ? "+" : d < 0 ? "-" : "", b);
}

static void side(char *buf, size_t size, bool present, long long bytes)
{
	if (present)
		text__bytes(bytes, buf, size);
	else
		snprintf(buf, size, "-");
}

/* Changed rows only: what stayed the same is not news. */
static void print_deltas(FILE *out, struct deltas *d, const char *title,
			 const char *what, int top)
{
	size_t i, shown = 0, changed = 0;

	/*
	 * No rows (no stacks on either side): v is still NULL, and qsort()
	 * wants a non-NULL base even for 0 elements (UBSan, tests/fuzz).
	 */
	if (d->n)
		qsort(d->v, d->n, sizeof(*d->v), by_change);
	for (i = 0; i < d->n; i++)
		changed += d->v[i].a != d->v[i].b;
	fprintf(out, "\n%s:\n", title);
	if (!changed) {
		fprintf(out, "  no change\n");
		return;
	}
	fprintf(out, "  %11s %10s %10s  %s\n", "CHANGE", "A", "B", what);
	for (i = 0; i < d->n && shown < (size_t)top; i++) {
		struct delta *r = &d->v[i];
		char ch[24], a[16], b[16];

		if (r->a == r->b)
			continue;
		diff__fmt_change(clamp_sub(r->b, r->a), ch, sizeof(ch));
		side(a, sizeof(a), r->in_a, r->a);
		side(b, sizeof(b), r->in_b, r->b);
		fprintf(out, "  %11s %10s %10s  %.100s\n", ch, a, b, r->label);
		shown++;
	}
	if (changed > shown)
		fprintf(out, "  (%zu more changed)\n", changed - shown);
}

static void describe(FILE *out, const char *tag, const char *name, json_t *doc)
{
	json_t *peak = json_object_get(doc, "peak");
	char b[16];

	text__bytes(snapdoc__int(peak, "bytes"), b, sizeof(b));
	fprintf(out, "%s: %s: %s (pid %lld), peak %s at %s\n", tag, name,
		snapdoc__str(doc, "comm") ?: "?",
		(long long)snapdoc__int(doc, "pid"), b,
		snapdoc__str(peak, "at") ?: "?");
}

static void total(FILE *out, json_t *a, json_t *b)
{
	long long pa = snapdoc__int(json_object_get(a, "peak"), "bytes");
	long long pb = snapdoc__int(json_object_get(b, "peak"), "bytes");
	char sa[16], sb[16], ch[24];

	text__bytes(pa, sa, sizeof(sa));
	text__bytes(pb, sb, sizeof(sb));
	diff__fmt_change(clamp_sub(pb, pa), ch, sizeof(ch));
	fprintf(out, "peak: %s -> %s (%s", sa, sb, ch);
	if (pa > 0)
		fprintf(out, ", %+.1f%%", 100.0 * ((double)pb - pa) / pa);
	fprintf(out, ")\n");
}

static void free_deltas(struct deltas *d)
{
	free(d->v);
	json_decref(d->index);
	*d = (struct deltas){ 0 };
}

#define CELLS_TITLE "cells, bytes at the peak (matched by source)"

void diff__print(FILE *out, json_t *a, json_t *b, const char *name_a,
		 const char *name_b, int top)
{
	struct deltas d = { .index = json_object() };

	describe(out, "A", name_a, a);
	describe(out, "B", name_b, b);
	total(out, a, b);
	add_cells(&d, a, false);
	add_cells(&d, b, true);
	if (d.n)
		print_deltas(out, &d, CELLS_TITLE, "CELL", top);
	free_deltas(&d);
	d.index = json_object();
	add_stacks(&d, a, false);
	add_stacks(&d, b, true);
	print_deltas(out, &d, "stacks, bytes at the peak (matched by frames)",
		     "WHERE", top);
	free_deltas(&d);
}

/* ---- the subcommand ----------------------------------------------------- */

static const char diff_usage[] = "Usage: memprof-bpf diff A B [--top N]\n"
				 "What grew or shrank at the peak from "
				 "snapshot A to snapshot B,\n"
				 "by cell and by stack, largest change "
				 "first.\n";

int diff__main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "top", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	json_t *a = NULL, *b = NULL;
	int c, top = 10;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hn:", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(diff_usage, stdout);
			return 0;
		}
		if (c == '?' || c == ':') {
			log_err("bad option '%s'; try diff --help",
				argv[optind - 1]);
			return 2;
		}
		if ((top = report__parse_top(optarg)) < 0)
			return 2;
	}
	if (optind != argc - 2) {
		log_err("diff wants two snapshot files; try diff --help");
		return 2;
	}
	a = snapdoc__load(argv[optind]);
	b = a ? snapdoc__load(argv[optind + 1]) : NULL;
	if (a && b)
		diff__print(stdout, a, b, argv[optind], argv[optind + 1], top);
	json_decref(a);
	json_decref(b);
	return !a || !b ? 2 : fflush(stdout) ? 1 : 0;
}
