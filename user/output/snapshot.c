// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "format/snapv2.h"
#include "snapshot.h"

/* ---- building ----------------------------------------------------------- */

/*
 * Read once per agent: the two clocks' readings are a few hundred ns apart,
 * so a fresh offset per file would print one instant (a cell's end) as
 * .892 in one file and .893 in the next.
 */
int64_t snapshot__mono_to_real(void)
{
	static int64_t offset;
	struct timespec r, m;

	if (offset)
		return offset;
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	offset = (r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
	return offset;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The address as a hex string: JSON numbers lose 64-bit precision. */
static json_t *native_frame(const struct site_frame *f)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)f->addr);
	return json_pack("{s:o, s:n, s:n, s:o, s:I, s:s, s:b}", "function",
			 str_or_null(f->function), "file", "line", "module",
			 str_or_null(f->module), "offset",
			 (json_int_t)f->offset, "address", addr, "native", 1);
}

/* JSON at the edge: the model's frames are typed (lib/frame.h). */
json_t *snapshot__frame(const struct site_frame *f)
{
	char label[96];

	if (f->kind == FRAME_NATIVE)
		return native_frame(f);
	if (f->kind == FRAME_PYTHON)
		return json_pack("{s:s, s:s, s:I, s:b}", "function",
				 f->function, "file", f->file, "line",
				 (json_int_t)f->line, "native", 0);
	return json_pack("{s:s, s:n, s:n, s:b}", "function",
			 site_frame__function(f, label, sizeof(label)), "file",
			 "line", "native", 0);
}

struct ranked {
	uint32_t site;
	int64_t bytes, count;
};

static int by_bytes_desc(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->site < y->site ? -1 : x->site > y->site;
}

/* The run is the site's (its description), the label the cells'. */
json_t *snapshot__site_cell(const struct snap_meta *m, uint32_t site)
{
	const struct cells *c = m->cells;
	int32_t run;

	if (!c || !m->sites || site >= m->sites->n)
		return json_null();
	run = m->sites->v[site].run;
	return run >= 0 && (size_t)run < c->n ? json_string(c->runs[run].label)
					      : json_null();
}

/* What one document interns: its tables, and each site's stack index. */
struct interned {
	struct snapv2 *t;
	long *stack_of; /* by site id: -1 until first written */
	size_t nsites;
};

/*
 * A name for a frame that is unique and cheap: its typed fields, not its
 * JSON text. A marker's label is made from its function field.
 */
static void frame_key(const struct site_frame *f, char *buf, size_t size)
{
	snprintf(buf, size, "%d|%s|%s|%s|%lld|%llx|%llx", (int)f->kind,
		 f->function ? f->function : "", f->file ? f->file : "",
		 f->module ? f->module : "", (long long)f->line,
		 (unsigned long long)f->addr, (unsigned long long)f->offset);
}

/* The site's stack in the tables: its frames interned, root first. */
static long site_stack(const struct snap_meta *m, struct interned *in,
		       uint32_t site)
{
	struct site_frame f[SITE_MAX_FRAMES];
	size_t i, n;
	json_t *idx;
	char key[1024];
	long k;

	if (site < in->nsites && in->stack_of[site] >= 0)
		return in->stack_of[site];
	n = sites__frames(m->sites, m->py, site, f, SITE_MAX_FRAMES);
	idx = json_array();
	for (i = 0; idx && i < n; i++) {
		frame_key(&f[i], key, sizeof(key));
		k = snapv2__find_frame(in->t, key);
		if (k < 0)
			k = snapv2__frame(in->t, key, snapshot__frame(&f[i]));
		if (k < 0 || json_array_append_new(idx, json_integer(k))) {
			json_decref(idx);
			return -1;
		}
	}
	if (!idx)
		return -1;
	k = snapv2__stack(in->t, idx);
	if (site < in->nsites)
		in->stack_of[site] = k;
	return k;
}

/* The run's label as a string index, or null outside any cell. */
static json_t *site_cell(const struct snap_meta *m, struct interned *in,
			 uint32_t site)
{
	json_t *label = snapshot__site_cell(m, site);
	json_t *ix = json_is_string(label)
			     ? snapv2__string(in->t, json_string_value(label))
			     : json_null();

	json_decref(label);
	return ix;
}

/* Stacks with live (or peak) bytes, largest first. */
static json_t *stacks(const struct snap_meta *m, struct interned *in,
		      const struct heap *h, bool peak)
{
	struct ranked *r = malloc((h->nsites ? h->nsites : 1) * sizeof(*r));
	json_t *arr = json_array();
	size_t i, n = 0;

	if (!r || !arr) {
		free(r);
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < h->nsites; i++) {
		int64_t b = peak ? h->sites[i].peak_bytes
				 : h->sites[i].live_bytes;
		int64_t c = peak ? h->sites[i].peak_count
				 : h->sites[i].live_count;

		if (b > 0 || c > 0)
			r[n++] = (struct ranked){ i, b, c };
	}
	qsort(r, n, sizeof(*r), by_bytes_desc);
	for (i = 0; i < n; i++) {
		long s = site_stack(m, in, r[i].site);

		if (s < 0 ||
		    json_array_append_new(
			    arr, json_pack("{s:I, s:I, s:I, s:o}", "stack",
					   (json_int_t)s, "bytes",
					   (json_int_t)r[i].bytes, "count",
					   (json_int_t)r[i].count, "cell",
					   site_cell(m, in, r[i].site)))) {
			json_decref(arr);
			arr = NULL;
			break;
		}
	}
	free(r);
	return arr;
}

/* ISO time of a CLOCK_MONOTONIC instant, or null for 0 (not yet). */
static json_t *mono_time(const struct snap_meta *m, uint64_t ns)
{
	char buf[40];

	if (!ns)
		return json_null();
	snapfile__iso_time(ns + m->mono_to_real_ns, buf, sizeof(buf));
	return json_string(buf);
}

/* One cell run (run == NULL: the allocations outside any cell). */
static json_t *cell_json(const struct snap_meta *m, const struct cell_run *r,
			 const struct cell_totals *t, bool peak)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "label",
			    json_string(r ? r->label : "(outside cells)"));
	json_object_set_new(o, "execution_count",
			    r && r->execution_count >= 0
				    ? json_integer(r->execution_count)
				    : json_null());
	json_object_set_new(o, "file", str_or_null(r ? r->file : NULL));
	json_object_set_new(o, "source_head", str_or_null(r ? r->head : NULL));
	json_object_set_new(o, "started_at",
			    r ? mono_time(m, r->started_ns) : json_null());
	json_object_set_new(o, "finished_at",
			    r ? mono_time(m, r->finished_ns) : json_null());
	json_object_set_new(o, "live_bytes",
			    json_integer(peak ? t->peak_bytes : t->live_bytes));
	json_object_set_new(o, "live_count",
			    json_integer(peak ? t->peak_count : t->live_count));
	json_object_set_new(o, "peak_bytes_during",
			    r ? json_integer(r->max_live) : json_null());
	json_object_set_new(o, "peak_above_start",
			    r ? json_integer(r->max_live - r->start_live)
			      : json_null());
	json_object_set_new(o, "bytes_at_process_peak",
			    json_integer(t->peak_bytes));
	json_object_set_new(o, "count", json_integer(t->allocs));
	return o;
}

json_t *snapshot__cells(const struct snap_meta *m, const struct heap *h,
			bool peak)
{
	const struct cells *c = m->cells;
	struct cell_totals *t;
	json_t *arr = json_array();
	size_t i;

	if (!c || !arr)
		return arr;
	t = calloc(c->n + 1, sizeof(*t));
	if (!t)
		return arr;
	cells__totals(c, m->sites, h, t);
	for (i = 0; i < c->n; i++)
		json_array_append_new(arr,
				      cell_json(m, &c->runs[i], &t[i], peak));
	if (c->n)
		json_array_append_new(arr, cell_json(m, NULL, &t[c->n], peak));
	free(t);
	return arr;
}

static json_t *section(const struct snap_meta *m, struct interned *in,
		       const struct heap *h, bool peak, const char *at)
{
	json_t *s = json_pack(
		"{s:I, s:I, s:s, s:o}", "bytes",
		(json_int_t)(peak ? h->peak_bytes : h->live_bytes), "count",
		(json_int_t)(peak ? h->peak_count : h->live_count), "at", at,
		"stacks", stacks(m, in, h, peak));

	if (s)
		json_object_set_new(s, "cells", snapshot__cells(m, h, peak));
	return s;
}

json_t *snapshot__peak_cell(const struct snap_meta *m)
{
	const struct cells *c = m->cells;

	if (!c || c->peak_run < 0 || (size_t)c->peak_run >= c->n)
		return json_null();
	return json_string(c->runs[c->peak_run].label);
}

/* The kernel's exit code: status << 8 on exit(), the signal number if killed. */
static json_t *exit_status(int code)
{
	return code >= 0 && (code & 0x7f) == 0
		       ? json_integer((code >> 8) & 0xff)
		       : json_null();
}

static json_t *exit_signal(int code)
{
	return code >= 0 && (code & 0x7f) ? json_integer(code & 0x7f)
					  : json_null();
}

static json_t *gc_json(const struct snap_meta *m)
{
	if (!m->gc_probed)
		return json_null();
	return json_pack("{s:I, s:f, s:I, s:I}", "collections",
			 (json_int_t)m->gc_collections, "seconds",
			 m->gc_ns / 1e9, "objects_collected",
			 (json_int_t)m->gc_objects, "bytes_freed",
			 (json_int_t)m->gc_bytes_freed);
}

/* The OOM kill: the memory cgroup and its limit, or null. */
static json_t *oom_json(const struct snap_meta *m)
{
	if (!m->oom)
		return json_null();
	return json_pack(
		"{s:o, s:o}", "memory_cgroup",
		m->oom_cgroup && *m->oom_cgroup ? json_string(m->oom_cgroup)
						: json_null(),
		"limit_bytes",
		m->oom_limit >= 0 ? json_integer(m->oom_limit) : json_null());
}

/* The census at attach: what was found and counted, or null. */
static json_t *census_json(const struct snap_meta *m)
{
	const struct census_summary *c = m->census;
	const char *state = c ? census__state_name(c->state) : NULL;
	json_t *bytes, *doc;
	int k;

	if (!state)
		return json_null();
	bytes = json_object();
	for (k = 0; k < CENSUS_KINDS; k++)
		json_object_set_new(bytes, census__kind_key(k),
				    json_integer(c->bytes[k]));
	doc = json_pack(
		"{s:s, s:f, s:o, s:I, s:o, s:{s:I, s:I, s:I}, s:I}", "state",
		state, "took_ms", c->took_ns / 1e6, "glibc",
		c->glibc[0] ? json_string(c->glibc) : json_null(), "blocks",
		(json_int_t)(c->count[CENSUS_HEAP] + c->count[CENSUS_MMAPPED]),
		"bytes", bytes, "skipped", "tcache",
		(json_int_t)c->tcache_skipped, "fastbin",
		(json_int_t)c->fastbin_skipped, "in_window",
		(json_int_t)c->in_window, "unwalked_bytes",
		(json_int_t)c->unwalked_bytes);
	if (doc)
		json_object_set_new(doc, "warning",
				    c->warning[0] ? json_string(c->warning)
						  : json_null());
	return doc ? doc : json_null();
}

/*
 * Milliseconds from the timeline's start to a monotonic instant, >= 0,
 * as the printed times differ: start_at + at_ms is exactly peak.at.
 */
static json_int_t since_start(const struct snap_meta *m, uint64_t ns)
{
	int64_t at = ((int64_t)ns + m->mono_to_real_ns) / 1000000;
	int64_t start =
		((int64_t)m->timeline->start_ns + m->mono_to_real_ns) / 1000000;

	return at > start ? at - start : 0;
}

/* Each cell run's span on the timeline (not "(before attach)"). */
static json_t *timeline_cells(const struct snap_meta *m)
{
	const struct timeline *tl = m->timeline;
	json_t *arr = json_array();
	size_t i;

	for (i = 0; m->cells && arr && i < m->cells->n; i++) {
		const struct cell_run *r = &m->cells->runs[i];

		if (r->before || !r->started_ns ||
		    (r->finished_ns && r->finished_ns < tl->start_ns))
			continue; /* not a cell, or over before (fork, exec) */
		json_array_append_new(
			arr,
			json_pack("{s:s, s:I, s:o}", "label", r->label,
				  "start_ms", since_start(m, r->started_ns),
				  "end_ms",
				  r->finished_ns ? json_integer(since_start(
							   m, r->finished_ns))
						 : json_null()));
	}
	return arr;
}

/*
 * Live bytes over time (docs/snapshot-format.md, "timeline"): the
 * buckets, the peak (the same as the peak section's) and the cells'
 * spans as offsets, so that readers need not parse times.
 */
static json_t *timeline_json(const struct snap_meta *m, const struct heap *h)
{
	const struct timeline *tl = m->timeline;
	json_t *live, *doc;
	char start[40];
	uint32_t i;

	if (!tl || !tl->n)
		return json_null();
	live = json_array();
	for (i = 0; live && i < tl->n; i++)
		json_array_append_new(live, json_integer(tl->max[i]));
	snapfile__iso_time(tl->start_ns + m->mono_to_real_ns, start,
			   sizeof(start));
	doc = json_pack(
		"{s:s, s:I, s:o, s:{s:I, s:I}, s:o}", "start_at", start,
		"interval_ms", (json_int_t)(tl->width_ns / 1000000), "live",
		live, "peak", "at_ms",
		since_start(m, h->peak_at_ns ? h->peak_at_ns : m->taken_ns),
		"bytes", (json_int_t)h->peak_bytes, "cells", timeline_cells(m));
	return doc ? doc : json_null();
}

/* The header: who, when, why, and the counters; the timeline. */
static json_t *header(const struct snap_meta *m, const struct heap *h)
{
	char taken[40];

	snapfile__iso_time(m->taken_ns + m->mono_to_real_ns, taken,
			   sizeof(taken));
	json_t *doc = json_pack(
		"{s:s, s:i, s:i, s:o, s:o, s:s, s:s, s:I, s:I, s:I, s:I}",
		"schema", SNAPSHOT_SCHEMA, "version", SNAPSHOT_VERSION, "pid",
		(int)m->pid, "comm", str_or_null(m->comm), "cmdline",
		str_or_null(m->cmdline), "reason", m->reason, "taken_at", taken,
		"rss_bytes", (json_int_t)m->rss_bytes, "dropped_events",
		(json_int_t)m->dropped_events, "unknown_frees",
		(json_int_t)m->unknown_frees, "allocations",
		(json_int_t)h->allocs);

	/* Objects one by one: a long json_pack format drops keys silently. */
	if (!doc)
		return NULL;
	json_object_set_new(doc, "exit_code", exit_status(m->exit_code));
	json_object_set_new(doc, "exit_signal", exit_signal(m->exit_code));
	json_object_set_new(doc, "gc", gc_json(m));
	json_object_set_new(doc, "peak_cell", snapshot__peak_cell(m));
	json_object_set_new(doc, "oom", oom_json(m));
	json_object_set_new(doc, "census", census_json(m));
	json_object_set_new(doc, "timeline", timeline_json(m, h));
	return doc;
}

/* The two sections, their stacks in one set of tables (version 2). */
static int sections(const struct snap_meta *m, struct heap *h, json_t *doc)
{
	struct interned in = { .t = snapv2__new(), .nsites = h->nsites };
	char taken[40], peak_at[40];
	int err = -ENOMEM;
	size_t i;

	snapfile__iso_time(m->taken_ns + m->mono_to_real_ns, taken,
			   sizeof(taken));
	snapfile__iso_time((h->peak_at_ns ? h->peak_at_ns : m->taken_ns) +
				   m->mono_to_real_ns,
			   peak_at, sizeof(peak_at));
	in.stack_of = malloc((in.nsites ? in.nsites : 1) * sizeof(long));
	if (!in.t || !in.stack_of)
		goto out;
	for (i = 0; i < in.nsites; i++)
		in.stack_of[i] = -1;
	if (!json_object_set_new(doc, "peak",
				 section(m, &in, h, true, peak_at)) &&
	    !json_object_set_new(doc, "current",
				 section(m, &in, h, false, taken)))
		err = snapv2__finish(in.t, doc);
out:
	free(in.stack_of);
	snapv2__free(in.t);
	return err;
}

json_t *snapshot__build(const struct snap_meta *m, struct heap *h)
{
	json_t *doc;

	heap__settle_peak(h);
	doc = header(m, h);
	if (doc && sections(m, h, doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}
