// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <time.h>
#include "lib/text.h"
#include "batch.h"
#include "procs/procs.h"

static void header(FILE *out)
{
	fprintf(out, "%-8s %7s %-15s %10s %10s %10s %8s %7s\n", "TIME", "PID",
		"COMM", "LIVE", "PEAK", "RSS", "ALLOC/S", "DROPPED");
}

static void line(FILE *out, const char *when, struct tracee *t, double elapsed)
{
	char live[16], peak[16], rss[16], rate[16];
	uint64_t allocs = t->heap.allocs;

	t->alloc_rate = elapsed > 0 ? (allocs - t->allocs_prev) / elapsed : 0;
	t->allocs_prev = allocs;
	text__bytes(t->heap.live_bytes, live, sizeof(live));
	text__bytes(t->heap.peak_bytes, peak, sizeof(peak));
	text__bytes(procs__rss_bytes(t->pid), rss, sizeof(rss));
	text__count(t->alloc_rate, rate, sizeof(rate));
	fprintf(out, "%-8s %7d %-15s %10s %10s %10s %8s %7llu%s\n", when,
		t->pid, t->comm, live, peak, rss, rate,
		(unsigned long long)t->dropped,
		t->attach == ATTACH_PENDING   ? "  (attaching)"
		: t->attach == ATTACH_FAILED  ? "  (attach failed)"
		: t->attach == ATTACH_BLOCKED ? "  (blocked by another tracer)"
					      : "");
}

void batch__report(struct agent *a, FILE *out, double elapsed)
{
	static int lines;
	char when[16];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (!a->procs.len && a->env.command)
		return;
	if (lines++ % 20 == 0)
		header(out);
	if (!a->procs.len)
		fprintf(out, "%-8s (no traced process yet)\n", when);
	for (i = 0; i < a->procs.len; i++)
		line(out, when, a->procs.v[i], elapsed);
	fflush(out);
}

static void cell_seconds(const struct cell_run *r, uint64_t now_ns, char *buf,
			 size_t size)
{
	uint64_t end = r->finished_ns ? r->finished_ns : now_ns;

	if ((!r->finished_ns && !r->marked) || r->before)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.2fs%s",
			 end > r->started_ns ? (end - r->started_ns) / 1e9 : 0,
			 r->finished_ns ? "" : "+");
}

static void cell_row(FILE *out, const struct cell_run *r,
		     const struct cell_totals *t, uint64_t now_ns)
{
	char live[16], high[16], above[16], at[16], allocs[16], secs[24];

	text__bytes(t->live_bytes, live, sizeof(live));
	text__bytes(r ? r->max_live : 0, high, sizeof(high));
	text__bytes(r ? r->max_live - r->start_live : 0, above, sizeof(above));
	text__bytes(t->peak_bytes, at, sizeof(at));
	text__count(t->allocs, allocs, sizeof(allocs));
	if (r)
		cell_seconds(r, now_ns, secs, sizeof(secs));
	fprintf(out, "  %-16.16s %10s %10s %10s %10s %7s %7s  %.60s\n",
		r ? r->label : "(outside cells)", live, r ? high : "-",
		r ? above : "-", at, allocs, r ? secs : "-",
		r && r->head ? r->head : (r && r->file ? r->file : ""));
}

void batch__cells(FILE *out, struct tracee *t, uint64_t now_ns)
{
	const struct cells *c = &t->cells;
	struct cell_totals *tot;
	char peak[16];
	size_t i;

	if (!c->n || !(tot = calloc(c->n + 1, sizeof(*tot))))
		return;
	heap__settle_peak(&t->heap);
	cells__totals(c, &t->sites, &t->heap, tot);
	text__bytes(t->heap.peak_bytes, peak, sizeof(peak));
	fprintf(out,
		"cells of pid %d (%s): high-water mark %s, reached in %s\n",
		t->pid, t->comm, peak,
		c->peak_run >= 0 ? c->runs[c->peak_run].label
				 : "(outside cells)");
	fprintf(out, "  %-16s %10s %10s %10s %10s %7s %7s  %s\n", "CELL",
		"LIVE", "HIGH", "+ABOVE", "AT PEAK", "ALLOCS", "TIME",
		"SOURCE");
	for (i = 0; i < c->n; i++)
		cell_row(out, &c->runs[i], &tot[i], now_ns);
	cell_row(out, NULL, &tot[c->n], now_ns);
	fflush(out);
	free(tot);
}
