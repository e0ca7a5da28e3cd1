/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Peak snapshots built from the live model: a process's heap, sites, Python
 * stacks and cell runs as the JSON document of docs/snapshot-format.md.
 * Files are written by format/snapfile.c.
 */
#ifndef MEMPROF_SNAPSHOT_H
#define MEMPROF_SNAPSHOT_H

#include "census/census.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "format/snapfile.h"
#include "model/cells.h"
#include "model/heap.h"
#include "model/pystacks.h"
#include "model/site.h"
#include "model/timeline.h"

struct snap_meta {
	pid_t pid;
	const char *comm, *cmdline, *reason;
	uint64_t rss_bytes, dropped_events, unknown_frees;
	int exit_code; /* wait-style code when exited, else -1 */
	int64_t mono_to_real_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t taken_ns; /* CLOCK_MONOTONIC */
	const struct sites *sites; /* what each of the heap's site ids is */
	const struct pystacks *py; /* the Python stacks they name */
	const struct cells *cells; /* notebook cell runs, or NULL */
	bool oom; /* killed by the OOM killer */
	const char *oom_cgroup; /* its memory cgroup ("" unknown) */
	int64_t oom_limit; /* that cgroup's limit, -1 none */
	/* CPython collections (NULL: no USDT markers in this interpreter). */
	uint64_t gc_collections, gc_ns, gc_objects, gc_bytes_freed;
	bool gc_probed;
	/* What it held before attach (NULL or CENSUS_NONE: no census). */
	const struct census_summary *census;
	/* Live bytes over time (NULL: none), sampled up to taken_ns. */
	const struct timeline *timeline;
};

/* Reason of --snapshot-every's rolling snapshot (replaced, one name). */
#define SNAPSHOT_PERIODIC "periodic"

/* Build the document (m->sites resolved: sites__resolve). */
json_t *snapshot__build(const struct snap_meta *m, struct heap *h);
/*
 * Per-cell figures, oldest run first, then "(outside cells)"; live_bytes
 * at the peak (peak) or now. Call after heap__settle_peak().
 */
json_t *snapshot__cells(const struct snap_meta *m, const struct heap *h,
			bool peak);
/* One typed frame as the snapshot format has it (docs/snapshot-format.md). */
json_t *snapshot__frame(const struct site_frame *f);
/* The cell run a site's bytes belong to: its label, or null outside. */
json_t *snapshot__site_cell(const struct snap_meta *m, uint32_t site);
/* Label of the cell running at the high-water mark, or JSON null. */
json_t *snapshot__peak_cell(const struct snap_meta *m);
/* CLOCK_REALTIME - CLOCK_MONOTONIC, read once: one instant, one time. */
int64_t snapshot__mono_to_real(void);

#endif
