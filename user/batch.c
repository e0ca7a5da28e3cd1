// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <time.h>
#include "batch.h"
#include "procs.h"

void batch__fmt_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return;
	}
	/* 1023.95 and up would print as "1024.0": next unit. */
	while (v >= 1023.95 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f %s", v, unit[u]);
}

void batch__fmt_count(double n, char *buf, size_t size)
{
	/* Edges by the printed value: 999.6 is "1.0k", not "1000". */
	if (n < 999.5)
		snprintf(buf, size, "%.0f", n);
	else if (n < 999950)
		snprintf(buf, size, "%.1fk", n / 1e3);
	else
		snprintf(buf, size, "%.1fM", n / 1e6);
}

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
	batch__fmt_bytes(t->heap.live_bytes, live, sizeof(live));
	batch__fmt_bytes(t->heap.peak_bytes, peak, sizeof(peak));
	batch__fmt_bytes(procs__rss_bytes(t->pid), rss, sizeof(rss));
	batch__fmt_count(t->alloc_rate, rate, sizeof(rate));
	fprintf(out, "%-8s %7d %-15s %10s %10s %10s %8s %7llu%s\n", when,
		t->pid, t->comm, live, peak, rss, rate,
		(unsigned long long)t->dropped,
		t->attach == ATTACH_PENDING  ? "  (attaching)"
		: t->attach == ATTACH_FAILED ? "  (attach failed)"
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
