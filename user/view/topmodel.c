// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lib/text.h"
#include "batch.h"
#include "topmodel.h"

/* ---- per-process history ----------------------------------------------- */

void topmodel__init(struct top_model *m)
{
	memset(m, 0, sizeof(*m));
}

void topmodel__free(struct top_model *m)
{
	free(m->procs);
	memset(m, 0, sizeof(*m));
}

static struct top_proc *find_proc(struct top_model *m, pid_t pid)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->procs[i].pid == pid)
			return &m->procs[i];
	return NULL;
}

struct top_proc *topmodel__proc(struct top_model *m, pid_t pid)
{
	struct top_proc *p = find_proc(m, pid);

	if (p)
		return p;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct top_proc *v = realloc(m->procs, cap * sizeof(*v));

		if (!v)
			return NULL;
		m->procs = v;
		m->cap = cap;
	}
	p = &m->procs[m->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	return p;
}

/* Drop the history of processes that are no longer traced. */
static void forget_gone(struct top_model *m, const struct tracees *ts)
{
	size_t i = 0, j;

	while (i < m->n) {
		for (j = 0; j < ts->len && ts->v[j]->pid != m->procs[i].pid;
		     j++)
			;
		if (j < ts->len)
			i++;
		else
			m->procs[i] = m->procs[--m->n];
	}
}

void topmodel__sample(struct top_model *m, const struct tracees *ts,
		      double elapsed, uint64_t (*rss)(pid_t))
{
	size_t i;

	forget_gone(m, ts);
	for (i = 0; i < ts->len; i++) {
		const struct tracee *t = ts->v[i];
		bool fresh = !find_proc(m, t->pid);
		struct top_proc *p = topmodel__proc(m, t->pid);
		uint64_t allocs = t->heap.allocs;

		if (!p)
			continue;
		/* A first sample has no interval: no rate spike from 0. */
		if (fresh)
			p->allocs_prev = allocs;
		p->alloc_rate =
			elapsed > 0 ? (allocs - p->allocs_prev) / elapsed : 0;
		p->allocs_prev = allocs;
		p->rss = t->exited || !rss ? 0 : rss(t->pid);
		top_history__push(&p->live, t->heap.live_bytes);
	}
}

void top_history__push(struct top_history *h, uint64_t v)
{
	h->v[h->head] = v;
	h->head = (h->head + 1) % TOP_HISTORY;
	if (h->n < TOP_HISTORY)
		h->n++;
}

uint64_t top_history__at(const struct top_history *h, size_t i)
{
	return h->v[(h->head + TOP_HISTORY - h->n + i) % TOP_HISTORY];
}

/* Highest sample in [from, to). */
static uint64_t history_max(const struct top_history *h, size_t from, size_t to)
{
	uint64_t max = 0;

	for (; from < to; from++)
		if (top_history__at(h, from) > max)
			max = top_history__at(h, from);
	return max;
}

int topmodel__sparkline(const struct top_history *h, int width, bool utf8,
			char *buf, size_t size)
{
	static const char *bars[] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
	static const char ascii[] = "_.,-=+*#";
	size_t g, cnt, k, len = 0;
	uint64_t top;

	buf[0] = '\0';
	if (width <= 0 || !h->n)
		return 0;
	/* Groups of g samples, the last one ending at the newest sample. */
	g = (h->n + width - 1) / width;
	cnt = (h->n + g - 1) / g;
	top = history_max(h, 0, h->n);
	for (k = 0; k < cnt; k++) {
		size_t end = h->n - (cnt - 1 - k) * g;
		size_t from = end > g ? end - g : 0;
		uint64_t v = history_max(h, from, end);
		int lvl = top ? (int)((double)v / top * 7 + 0.5) : 0;
		const char *s = utf8 ? bars[lvl] : (char[]){ ascii[lvl], 0 };
		size_t sl = strlen(s);

		if (len + sl + 1 > size)
			break;
		memcpy(buf + len, s, sl + 1);
		len += sl;
	}
	return (int)k;
}

/* "kernel-1a2b3c4d" from a "-f .../kernel-<uuid>.json" argument, or 0. */
static bool kernel_id(const char *cmdline, char *buf, size_t size)
{
	const char *k = cmdline;

	while ((k = strstr(k, "kernel-"))) {
		const char *id = k + 7, *end = strchr(id, ' ');
		size_t n = 0;

		if (!end)
			end = id + strlen(id);
		while (n < 8 && isxdigit((unsigned char)id[n]))
			n++;
		if ((k == cmdline || k[-1] == '/' || k[-1] == ' ') && n &&
		    end - id >= 5 && !strncmp(end - 5, ".json", 5)) {
			snprintf(buf, size, "kernel-%.*s", (int)n, id);
			return true;
		}
		k = id;
	}
	return false;
}

/* Next space-separated word of *s into buf; false at the end. */
static bool next_word(const char **s, char *buf, size_t size)
{
	size_t n;

	while (**s == ' ')
		(*s)++;
	n = strcspn(*s, " ");
	if (!n)
		return false;
	snprintf(buf, size, "%.*s", (int)n, *s);
	*s += n;
	return true;
}

/*
 * An ipykernel whose connection file is not kernel-<uuid>.json (nbclient
 * uses a temporary file): "kernel:<file name without .json>".
 */
static bool kernel_file(const char *rest, char *buf, size_t size)
{
	char w[256];
	size_t n;

	while (next_word(&rest, w, sizeof(w)))
		if (!strcmp(w, "-f") && next_word(&rest, w, sizeof(w))) {
			const char *b = text__base_name(w);

			n = strlen(b);
			if (n > 5 && !strcmp(b + n - 5, ".json"))
				n -= 5;
			snprintf(buf, size, "kernel:%.*s", (int)n, b);
			return true;
		}
	return false;
}

/* The script, -m module or -c of a Python command line, after argv[0]. */
static void python_target(const char *rest, const char *prog, char *buf,
			  size_t size)
{
	char w[256];

	while (next_word(&rest, w, sizeof(w))) {
		if (!strcmp(w, "-m") && next_word(&rest, w, sizeof(w))) {
			if (strncmp(w, "ipykernel", 9) ||
			    !kernel_file(rest, buf, size))
				snprintf(buf, size, "%s", w);
			return;
		}
		if (!strcmp(w, "-c")) {
			snprintf(buf, size, "%s -c", prog);
			return;
		}
		if (!strcmp(w, "-X") || !strcmp(w, "-W")) {
			next_word(&rest, w, sizeof(w)); /* their argument */
			continue;
		}
		if (w[0] != '-') {
			snprintf(buf, size, "%s", text__base_name(w));
			return;
		}
	}
	snprintf(buf, size, "%s", prog);
}

void topmodel__proc_name(const char *cmdline, const char *comm, char *buf,
			 size_t size)
{
	const char *rest = cmdline;
	char w[256];
	const char *prog;

	if (!cmdline || !next_word(&rest, w, sizeof(w))) {
		snprintf(buf, size, "%s", comm && *comm ? comm : "?");
		return;
	}
	if (kernel_id(cmdline, buf, size))
		return;
	prog = text__base_name(w);
	if (!strncmp(prog, "python", 6) || !strncmp(prog, "pypy", 4))
		python_target(rest, prog, buf, size);
	else
		snprintf(buf, size, "%s", prog);
}

static bool cont_byte(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Columns of s: one per code point (UTF-8) or per byte. */
static int columns(const char *s, bool utf8)
{
	int n = 0;

	for (; *s; s++)
		n += !utf8 || !cont_byte(*s);
	return n;
}

int topmodel__fit(const char *s, int width, bool utf8, char *buf, size_t size)
{
	const char *ell = utf8 ? "…" : "~";
	size_t el = strlen(ell), o = 0, n;
	int cols = 0, keep;

	if (!size)
		return 0;
	buf[0] = '\0';
	if (width <= 0)
		return 0;
	keep = columns(s, utf8) > width ? width - 1 : width;
	for (; *s && cols < keep; s += n, cols++) {
		/* One code point; without UTF-8, one byte, '?' if not ASCII. */
		for (n = 1; utf8 && s[n] && cont_byte(s[n]); n++)
			;
		if (o + n + el + 1 > size)
			break;
		if (utf8 || (unsigned char)*s < 0x80)
			memcpy(buf + o, s, n);
		else
			buf[o] = '?';
		o += n;
	}
	if (*s && o + el + 1 <= size) {
		memcpy(buf + o, ell, el);
		o += el;
		cols++;
	}
	buf[o] = '\0';
	return cols;
}

const char *topmodel__sort_name(enum top_view view, enum top_sort sort)
{
	static const char *names[][TOP_NSORT] = {
		[TOP_CELLS] = { "bytes", "peak during", "allocs", "run order" },
		[TOP_STACKS] = { "bytes", "blocks", "allocs", "first seen" },
		[TOP_PROCS] = { "live", "high-water", "allocs/s", "pid" },
	};

	return sort < TOP_NSORT ? names[view][sort] : "?";
}

/* ---- a line of columns ------------------------------------------------- */

struct line {
	char *buf;
	size_t size, len;
	int cols, width;
	bool utf8;
};

static void line_init(struct line *l, char *buf, size_t size, int width,
		      bool utf8)
{
	*l = (struct line){ buf, size, 0, 0, width, utf8 };
	if (size)
		buf[0] = '\0';
}

/*
 * Append s in a field of w columns (w < 0: the rest of the line), left or
 * right aligned, cut with an ellipsis to fit; never past the width.
 */
static void line_add(struct line *l, const char *s, int w, bool right)
{
	char fitted[TOP_TEXT * 2];
	int room = l->width - l->cols, used, pad;

	if (w < 0 || w > room) {
		/* A number cut short would mislead: leave it out. */
		if (right && w > room)
			s = "";
		w = room;
	}
	if (w <= 0 || l->len + 1 >= l->size)
		return;
	used = topmodel__fit(s, w, l->utf8, fitted, sizeof(fitted));
	pad = w - used;
	if (w == room && !right)
		pad = 0; /* no trailing blanks at the end of the line */
	if (right)
		l->len += snprintf(l->buf + l->len, l->size - l->len, "%*s%s",
				   pad, "", fitted);
	else
		l->len += snprintf(l->buf + l->len, l->size - l->len, "%s%*s",
				   fitted, pad, "");
	if (l->len >= l->size)
		l->len = l->size - 1;
	l->cols += used + pad;
}

/* A left-aligned field followed by text: always one blank between. */
static void line_add_sep(struct line *l, const char *s, int w)
{
	line_add(l, s, w - 1, false);
	line_add(l, "", 1, false);
}

/* Lines end where their text does: no trailing blanks. */
static void line_end(struct line *l)
{
	while (l->len && l->buf[l->len - 1] == ' ') {
		l->buf[--l->len] = '\0';
		l->cols--;
	}
}

static void add_bytes(struct line *l, uint64_t v, int w)
{
	char b[24];

	text__bytes(v, b, sizeof(b));
	line_add(l, b, w, true);
}

/* ---- processes ----------------------------------------------------------- */

void topmodel__proc_row(const struct tracee *t, const struct top_proc *p,
			struct top_proc_row *row)
{
	const struct cells *c = &t->cells;

	memset(row, 0, sizeof(*row));
	row->pid = t->pid;
	snprintf(row->comm, sizeof(row->comm), "%s", t->comm);
	topmodel__proc_name(t->cmdline, t->comm, row->name, sizeof(row->name));
	row->live = t->heap.live_bytes;
	row->peak = t->heap.peak_bytes;
	row->peak_at_ns = t->heap.peak_at_ns;
	row->rss = p ? p->rss : 0;
	row->alloc_rate = p ? p->alloc_rate : 0;
	row->dropped = t->dropped;
	row->nruns = c->n;
	if (c->peak_run >= 0 && (size_t)c->peak_run < c->n)
		snprintf(row->peak_cell, sizeof(row->peak_cell), "%s",
			 c->runs[c->peak_run].label);
	else if (c->n && row->peak)
		snprintf(row->peak_cell, sizeof(row->peak_cell),
			 "(outside cells)");
	row->state = t->exited			   ? "exited"
		     : t->attach == ATTACH_PENDING ? "attaching"
		     : t->attach == ATTACH_FAILED  ? "attach failed"
		     : t->attach == ATTACH_BLOCKED ? "blocked by another tracer"
		     : t->census.state == CENSUS_QUEUED ||
				     t->census.state == CENSUS_RUNNING
			     ? "reading what it held before attach"
			     : "";
}

static enum top_sort sort_key; /* qsort has no context argument */

static int cmp_u64_desc(uint64_t a, uint64_t b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int cmp_proc(const void *x, const void *y)
{
	const struct top_proc_row *a = x, *b = y;
	int c = 0;

	if (sort_key == TOP_SORT_BYTES)
		c = cmp_u64_desc(a->live, b->live);
	else if (sort_key == TOP_SORT_HIGH)
		c = cmp_u64_desc(a->peak, b->peak);
	else if (sort_key == TOP_SORT_ALLOCS)
		c = a->alloc_rate < b->alloc_rate   ? 1
		    : a->alloc_rate > b->alloc_rate ? -1
						    : 0;
	return c ? c : (a->pid > b->pid) - (a->pid < b->pid);
}

ssize_t topmodel__procs(const struct tracees *ts, struct top_model *m,
			enum top_sort sort, struct top_proc_row **out)
{
	struct top_proc_row *rows =
		calloc(ts->len ? ts->len : 1, sizeof(*rows));
	size_t i;

	*out = rows;
	if (!rows)
		return -1;
	for (i = 0; i < ts->len; i++)
		topmodel__proc_row(ts->v[i], find_proc(m, ts->v[i]->pid),
				   &rows[i]);
	sort_key = sort;
	qsort(rows, ts->len, sizeof(*rows), cmp_proc);
	return ts->len;
}

/* ---- cells --------------------------------------------------------------- */

static void cell_row(const struct cells *c, int32_t run,
		     const struct cell_totals *t, uint64_t hwm, bool at_peak,
		     struct top_cell_row *row)
{
	const struct cell_run *r = run >= 0 ? &c->runs[run] : NULL;
	int64_t bytes = at_peak ? t->peak_bytes : t->live_bytes;

	memset(row, 0, sizeof(*row));
	row->run = run;
	row->bytes = bytes > 0 ? bytes : 0;
	row->share = hwm && t->peak_bytes > 0 ? (double)t->peak_bytes / hwm : 0;
	row->allocs = t->allocs;
	row->drove_peak = run >= 0 && run == c->peak_run;
	snprintf(row->label, sizeof(row->label), "%s",
		 r ? r->label : "(outside cells)");
	if (!r)
		return;
	snprintf(row->source, sizeof(row->source), "%s",
		 r->head   ? r->head
		 : r->file ? r->file
			   : "");
	row->high = r->max_live;
	row->running = !r->finished_ns;
	row->current = run == c->current;
	row->failed = r->marked && r->finished_ns && !r->success;
}

static int cmp_cell(const void *x, const void *y)
{
	const struct top_cell_row *a = x, *b = y;
	/* Run order puts "(outside cells)" last, like the batch table. */
	uint32_t ra = a->run, rb = b->run;
	int c = 0;

	if (sort_key == TOP_SORT_BYTES)
		c = cmp_u64_desc(a->bytes, b->bytes);
	else if (sort_key == TOP_SORT_HIGH)
		c = cmp_u64_desc(a->high, b->high);
	else if (sort_key == TOP_SORT_ALLOCS)
		c = cmp_u64_desc(a->allocs, b->allocs);
	return c ? c : (ra > rb) - (ra < rb);
}

ssize_t topmodel__cells(struct heap *h, const struct sites *s,
			const struct cells *c, bool at_peak, enum top_sort sort,
			struct top_cell_row **out)
{
	struct cell_totals *tot;
	struct top_cell_row *rows;
	size_t i, n = c->n ? c->n + 1 : 0;

	*out = NULL;
	tot = calloc(c->n + 1, sizeof(*tot));
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!tot || !rows) {
		free(tot);
		free(rows);
		return -1;
	}
	heap__settle_peak(h);
	cells__totals(c, s, h, tot);
	for (i = 0; i < n; i++)
		cell_row(c, i < c->n ? (int32_t)i : CELL_OUTSIDE, &tot[i],
			 h->peak_bytes, at_peak, &rows[i]);
	free(tot);
	sort_key = sort;
	qsort(rows, n, sizeof(*rows), cmp_cell);
	*out = rows;
	return n;
}

/* ---- stacks -------------------------------------------------------------- */

void topmodel__sites_of(struct tracee *t, struct top_sites *s)
{
	*s = (struct top_sites){
		.heap = &t->heap,
		.sites = &t->sites,
		.cells = &t->cells,
		.py = &t->py,
	};
}

static int32_t run_of(const struct top_sites *s, size_t site)
{
	return site < s->sites->n ? s->sites->v[site].run : CELL_OUTSIDE;
}

struct ranked_site {
	uint32_t site;
	int64_t bytes, count;
	uint64_t allocs;
};

static int cmp_site(const void *x, const void *y)
{
	const struct ranked_site *a = x, *b = y;
	int c = 0;

	if (sort_key == TOP_SORT_BYTES)
		c = cmp_u64_desc(a->bytes, b->bytes);
	else if (sort_key == TOP_SORT_HIGH)
		c = cmp_u64_desc(a->count, b->count);
	else if (sort_key == TOP_SORT_ALLOCS)
		c = cmp_u64_desc(a->allocs, b->allocs);
	return c ? c : (a->site > b->site) - (a->site < b->site);
}

/*
 * A frame in the site's own cell shows that run's label ("In [7]:3
 * <module>"); other files, cells included, their base name: a function
 * compiled by an earlier run cannot tell which re-run it came from.
 */
static const char *file_label(const struct cells *c, int32_t run,
			      const char *file)
{
	if (c && run >= 0 && (size_t)run < c->n && c->runs[run].file &&
	    !strcmp(c->runs[run].file, file))
		return c->runs[run].label;
	return text__base_name(file);
}

/* A Python frame or a marker (no file): what the view's line says. */
static void frame_text(const struct top_sites *s, int32_t run,
		       const struct site_frame *f, char *buf, size_t size)
{
	char label[96];
	const char *fn = site_frame__function(f, label, sizeof(label));

	if (!f->file)
		snprintf(buf, size, "%s", fn ? fn : "?");
	else
		snprintf(buf, size, "%s:%lld %s",
			 file_label(s->cells, run, f->file), (long long)f->line,
			 fn ? fn : "?");
}

/* The allocator's caller: function+offset, or its address when nameless. */
static void native_text(const struct site_frame *f, char *buf, size_t size)
{
	if (!f->resolved)
		snprintf(buf, size, "[native caller not resolved]");
	else if (f->function)
		snprintf(buf, size, "%s+0x%llx (%s)", f->function,
			 (unsigned long long)f->offset,
			 f->module ? text__base_name(f->module) : "?");
	else
		snprintf(buf, size, "0x%llx (%s)", (unsigned long long)f->addr,
			 f->module ? text__base_name(f->module) : "?");
}

/*
 * Frames of a site, root first: the typed frames the snapshot is made
 * from too (sites__frames), so the view and the snapshot cannot disagree
 * on lines or markers. The last one is the native caller (none for a
 * census site).
 */
static int site_frames(const struct top_sites *s, uint32_t site,
		       struct top_stack_row *row)
{
	struct site_frame f[SITE_MAX_FRAMES];
	size_t i, n = sites__frames(s->sites, s->py, site, f, SITE_MAX_FRAMES);

	row->frames = calloc(n ? n : 1, sizeof(*row->frames));
	if (!row->frames)
		return -1;
	for (i = 0; i < n; i++) {
		/* A census site's one frame is its label, not a caller. */
		row->frames[i].native = f[i].kind == FRAME_NATIVE;
		if (row->frames[i].native)
			native_text(&f[i], row->frames[i].text, TOP_TEXT);
		else
			frame_text(s, run_of(s, site), &f[i],
				   row->frames[i].text, TOP_TEXT);
	}
	row->nframes = n;
	return 0;
}

/* Sites with bytes (of one run), ranked; count or -1. */
static ssize_t rank_sites(const struct top_sites *s, bool at_peak, int32_t run,
			  struct ranked_site **out)
{
	const struct heap *h = s->heap;
	struct ranked_site *r =
		malloc((h->nsites ? h->nsites : 1) * sizeof(*r));
	size_t i, n = 0;

	*out = r;
	if (!r)
		return -1;
	for (i = 0; i < h->nsites; i++) {
		const struct site *st = &h->sites[i];
		int64_t b = at_peak ? st->peak_bytes : st->live_bytes;

		if (b <= 0 || (run != TOP_ANY_RUN && run_of(s, i) != run))
			continue;
		r[n++] = (struct ranked_site){ i, b,
					       at_peak ? st->peak_count
						       : st->live_count,
					       st->allocs };
	}
	return n;
}

ssize_t topmodel__stacks(const struct top_sites *s, bool at_peak, int32_t run,
			 enum top_sort sort, size_t max,
			 struct top_stack_row **out)
{
	struct ranked_site *r;
	struct top_stack_row *rows;
	ssize_t n;
	size_t i;

	*out = NULL;
	heap__settle_peak(s->heap);
	n = rank_sites(s, at_peak, run, &r);
	if (n < 0)
		return -1;
	sort_key = sort;
	qsort(r, n, sizeof(*r), cmp_site);
	if ((size_t)n > max)
		n = max;
	rows = calloc(n ? n : 1, sizeof(*rows));
	for (i = 0; rows && i < (size_t)n; i++) {
		int32_t cr = run_of(s, r[i].site);

		rows[i].site = r[i].site;
		rows[i].bytes = r[i].bytes;
		rows[i].count = r[i].count;
		rows[i].allocs = r[i].allocs;
		if (cr >= 0 && (size_t)cr < s->cells->n)
			snprintf(rows[i].cell, sizeof(rows[i].cell), "%s",
				 s->cells->runs[cr].label);
		if (site_frames(s, r[i].site, &rows[i])) {
			topmodel__free_stacks(rows, i + 1);
			rows = NULL;
		}
	}
	free(r);
	*out = rows;
	return rows ? n : -1;
}

void topmodel__free_stacks(struct top_stack_row *rows, size_t n)
{
	size_t i;

	for (i = 0; rows && i < n; i++)
		free(rows[i].frames);
	free(rows);
}

/* ---- lines --------------------------------------------------------------- */

void topmodel__header(const struct top_stats *st, int width, bool utf8,
		      char *buf, size_t size, size_t *hot)
{
	char when[16], head[160], ev[24], drop[128];
	struct line l;
	struct tm tm;

	localtime_r(&st->now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	text__count(st->events_per_s, ev, sizeof(ev));
	snprintf(head, sizeof(head),
		 "memprof-bpf %s%s  %zu process%s  %s events/s  CPU %.1f%%  ",
		 when, st->paused ? " (paused)" : "", st->nprocs,
		 st->nprocs == 1 ? "" : "es", ev, st->cpu_percent);
	if (st->dropped)
		snprintf(drop, sizeof(drop),
			 "dropped %llu: ring buffer full, raise "
			 "--ringbuf-size",
			 (unsigned long long)st->dropped);
	else
		snprintf(drop, sizeof(drop), "dropped 0");
	line_init(&l, buf, size, width, utf8);
	line_add(&l, head, strlen(head), false);
	*hot = l.len;
	line_add(&l, drop, -1, false);
}

/* "2m" or "45s": how far back the sparkline reaches. */
static void span(double seconds, char *buf, size_t size)
{
	if (seconds >= 120)
		snprintf(buf, size, "%.0fm", seconds / 60);
	else
		snprintf(buf, size, "%.0fs", seconds);
}

static void proc_line1(const struct top_proc_row *r, int width, bool utf8,
		       char *buf, size_t size)
{
	char live[24], rss[24], un[24], s[256];
	struct line l;

	text__bytes(r->live, live, sizeof(live));
	text__bytes(r->rss, rss, sizeof(rss));
	text__bytes(r->rss > r->live ? r->rss - r->live : 0, un, sizeof(un));
	snprintf(s, sizeof(s),
		 "PID %d  %s (%s)  live %s  RSS %s  untracked %s%s%s%s", r->pid,
		 r->name, r->comm, live, r->rss ? rss : "-", r->rss ? un : "-",
		 *r->state ? "  [" : "", r->state, *r->state ? "]" : "");
	line_init(&l, buf, size, width, utf8);
	line_add(&l, s, -1, false);
	line_end(&l);
}

void topmodel__proc_bar(const struct top_proc_row *r,
			const struct top_history *hist, double interval,
			int64_t mono_to_real, int width, bool utf8, char *line1,
			char *line2, size_t size, size_t *spark)
{
	char peak[24], at[16] = "", s[256], back[16], sp[TOP_HISTORY * 3 + 1];
	struct line l;

	proc_line1(r, width, utf8, line1, size);
	text__bytes(r->peak, peak, sizeof(peak));
	if (r->peak_at_ns) {
		time_t t =
			(time_t)((r->peak_at_ns + mono_to_real) / 1000000000);
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(at, sizeof(at), " at %H:%M:%S", &tm);
	}
	span(hist ? hist->n * interval : 0, back, sizeof(back));
	snprintf(s, sizeof(s), "high-water %s%s%s%s   live, last %s: ", peak,
		 *r->peak_cell ? " in " : "", r->peak_cell, at, back);
	line_init(&l, line2, size, width, utf8);
	line_add(&l, s, strlen(s), false);
	*spark = l.len;
	if (hist && width - l.cols > 0) {
		int w = width - l.cols > 60 ? 60 : width - l.cols;

		topmodel__sparkline(hist, w, utf8, sp, sizeof(sp));
		line_add(&l, sp, -1, false);
	}
}

/* Column widths of the cells table. */
enum {
	CW_MARK = 2,
	CW_LABEL = 15,
	CW_BYTES = 11,
	CW_HIGH = 12,
	CW_SHARE = 8,
	CW_ALLOCS = 8,
	CW_STATE = 10
};

void topmodel__cells_head(bool at_peak, int width, bool utf8, char *buf,
			  size_t size)
{
	struct line l;

	line_init(&l, buf, size, width, utf8);
	line_add(&l, "", CW_MARK, false);
	line_add(&l, "CELL", CW_LABEL, false);
	line_add(&l, at_peak ? "AT PEAK" : "LIVE", CW_BYTES, true);
	line_add(&l, "PEAK DURING", CW_HIGH, true);
	line_add(&l, "OF HWM", CW_SHARE, true);
	line_add(&l, "ALLOCS", CW_ALLOCS, true);
	line_add(&l, "  STATE", CW_STATE, false);
	line_add(&l, "SOURCE", -1, false);
	line_end(&l);
}

void topmodel__cell_line(const struct top_cell_row *r, int width, bool utf8,
			 char *buf, size_t size)
{
	char share[16], allocs[16];
	const char *state = r->run < 0	 ? ""
			    : r->running ? "running"
			    : r->failed	 ? "failed"
					 : "done";
	struct line l;

	snprintf(share, sizeof(share), "%.1f%%", r->share * 100);
	text__count(r->allocs, allocs, sizeof(allocs));
	line_init(&l, buf, size, width, utf8);
	line_add(&l, r->current ? (utf8 ? "▶" : ">") : "", CW_MARK, false);
	line_add(&l, r->label, CW_LABEL, false);
	add_bytes(&l, r->bytes, CW_BYTES);
	if (r->run >= 0)
		add_bytes(&l, r->high, CW_HIGH);
	else
		line_add(&l, "-", CW_HIGH, true);
	line_add(&l, share, CW_SHARE, true);
	line_add(&l, allocs, CW_ALLOCS, true);
	line_add(&l, "", 2, false);
	line_add(&l, state, CW_STATE - 2, false);
	line_add(&l, r->source, -1, false);
	line_end(&l);
}

enum { SW_BYTES = 11, SW_COUNT = 9, SW_CELL = 17 };

void topmodel__stacks_head(bool at_peak, int width, bool utf8, char *buf,
			   size_t size)
{
	struct line l;

	line_init(&l, buf, size, width, utf8);
	line_add(&l, at_peak ? "AT PEAK" : "LIVE", SW_BYTES, true);
	line_add(&l, "BLOCKS", SW_COUNT, true);
	line_add(&l, "  CELL", SW_CELL, false);
	line_add(&l, "ALLOCATED BY (innermost Python frame)", -1, false);
	line_end(&l);
}

/* The innermost Python frame (or marker); the native leaf when none. */
static const char *innermost(const struct top_stack_row *r)
{
	return r->nframes > 1 ? r->frames[r->nframes - 2].text
	       : r->nframes   ? r->frames[0].text
			      : "";
}

void topmodel__stack_line(const struct top_stack_row *r, int width, bool utf8,
			  char *buf, size_t size)
{
	char count[24];
	struct line l;

	snprintf(count, sizeof(count), "%lld", (long long)r->count);
	line_init(&l, buf, size, width, utf8);
	add_bytes(&l, r->bytes, SW_BYTES);
	line_add(&l, count, SW_COUNT, true);
	line_add(&l, "", 2, false);
	line_add_sep(&l, *r->cell ? r->cell : "-", SW_CELL - 2);
	line_add(&l, innermost(r), -1, false);
	line_end(&l);
}

size_t topmodel__cell_frame(const struct top_stack_row *r)
{
	size_t i, n = strlen(r->cell);

	for (i = 0; n && i < r->nframes; i++)
		if (!strncmp(r->frames[i].text, r->cell, n) &&
		    r->frames[i].text[n] == ':')
			return i;
	return 0;
}

void topmodel__frame_line(const struct top_stack_row *r, size_t i, size_t depth,
			  int width, bool utf8, char *buf, size_t size)
{
	struct line l;

	if (depth > 12)
		depth = 12; /* deep stacks stay readable */
	line_init(&l, buf, size, width, utf8);
	line_add(&l, "", 4 + 2 * depth, false);
	if (i < r->nframes)
		line_add(&l, r->frames[i].text, -1, false);
	line_end(&l);
}

enum {
	PW_PID = 8,
	PW_NAME = 20,
	PW_COMM = 16,
	PW_BYTES = 11,
	PW_RATE = 9,
	PW_DROP = 9,
	PW_CELLS = 7
};

void topmodel__procs_head(int width, bool utf8, char *buf, size_t size)
{
	struct line l;

	line_init(&l, buf, size, width, utf8);
	line_add(&l, "PID", PW_PID, true);
	line_add(&l, "  NAME", PW_NAME, false);
	line_add(&l, "COMM", PW_COMM, false);
	line_add(&l, "LIVE", PW_BYTES, true);
	line_add(&l, "HIGH-WATER", PW_BYTES, true);
	line_add(&l, "RSS", PW_BYTES, true);
	line_add(&l, "ALLOC/S", PW_RATE, true);
	line_add(&l, "DROPPED", PW_DROP, true);
	line_add(&l, "CELLS", PW_CELLS, true);
	line_add(&l, "  STATE", -1, false);
	line_end(&l);
}

void topmodel__proc_line(const struct top_proc_row *r, int width, bool utf8,
			 char *buf, size_t size)
{
	char pid[16], rate[16], drop[24], cells[16];
	struct line l;

	snprintf(pid, sizeof(pid), "%d", r->pid);
	text__count(r->alloc_rate, rate, sizeof(rate));
	snprintf(drop, sizeof(drop), "%llu", (unsigned long long)r->dropped);
	snprintf(cells, sizeof(cells), "%zu", r->nruns);
	line_init(&l, buf, size, width, utf8);
	line_add(&l, pid, PW_PID, true);
	line_add(&l, "", 2, false);
	line_add_sep(&l, r->name, PW_NAME - 2);
	line_add_sep(&l, r->comm, PW_COMM);
	add_bytes(&l, r->live, PW_BYTES);
	add_bytes(&l, r->peak, PW_BYTES);
	if (r->rss)
		add_bytes(&l, r->rss, PW_BYTES);
	else
		line_add(&l, "-", PW_BYTES, true);
	line_add(&l, rate, PW_RATE, true);
	line_add(&l, drop, PW_DROP, true);
	line_add(&l, cells, PW_CELLS, true);
	line_add(&l, "", 2, false);
	line_add(&l, r->state, -1, false);
	line_end(&l);
}
