/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Peak snapshots as JSON (jansson), format in docs/snapshot-format.md.
 * Files are published atomically: written to a 0600 temp file created with
 * O_EXCL|O_NOFOLLOW in the target directory, fsync'd, then renamed (-o) or
 * linked to a fresh name (never clobbering), and handed to the sudo user.
 */
#ifndef MEMPROF_SNAPSHOT_H
#define MEMPROF_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "model/cells.h"
#include "model/heap.h"
#include "model/pystacks.h"
#include "procs/symbolize.h"

#define SNAPSHOT_SCHEMA "memprof-bpf/snapshot"
#define SNAPSHOT_VERSION 1

struct snap_meta {
	pid_t pid;
	const char *comm, *cmdline, *reason;
	uint64_t rss_bytes, dropped_events, unknown_frees;
	int exit_code; /* wait-style code when exited, else -1 */
	int64_t mono_to_real_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t taken_ns; /* CLOCK_MONOTONIC */
	/* Python stack id per site (0: none), and their frames. */
	const uint64_t *site_stack;
	char *const *site_import; /* module being imported, per site */
	size_t nsite_stack;
	const struct pystacks *py;
	const struct cells *cells; /* notebook cell runs, or NULL */
	bool oom; /* killed by the OOM killer */
	const char *oom_cgroup; /* its memory cgroup ("" unknown) */
	int64_t oom_limit; /* that cgroup's limit, -1 none */
	/* CPython collections (NULL: no USDT markers in this interpreter). */
	uint64_t gc_collections, gc_ns, gc_objects, gc_bytes_freed;
	bool gc_probed;
};

/* Reason of --snapshot-every's rolling snapshot (replaced, one name). */
#define SNAPSHOT_PERIODIC "periodic"

/* Build the document; sites resolved in frames[0..nframes). */
json_t *snapshot__build(const struct snap_meta *m, struct heap *h,
			const struct frame *frames, size_t nframes);
/*
 * Per-cell figures, oldest run first, then "(outside cells)"; live_bytes
 * at the peak (peak) or now. Call after heap__settle_peak().
 */
json_t *snapshot__cells(const struct snap_meta *m, const struct heap *h,
			bool peak);
/*
 * A site's frames as its snapshot stack has them, root first: Python
 * frames (if any, under an "[import X]" marker), then the native caller.
 */
json_t *snapshot__site_frames(const struct snap_meta *m, uint32_t site,
			      const struct frame *native);
/* The cell run a site's bytes belong to: its label, or null outside. */
json_t *snapshot__site_cell(const struct snap_meta *m, uint32_t site);
/* Label of the cell running at the high-water mark, or JSON null. */
json_t *snapshot__peak_cell(const struct snap_meta *m);
/*
 * Write doc to path. replace: rename over an existing file (-o); else the
 * name must be new (-EEXIST otherwise). Returns 0 or -errno.
 */
int snapshot__save(json_t *doc, const char *path, bool replace);
/* The same for a rendered export (folded, HTML); a final newline added. */
int snapshot__save_text(const char *text, size_t len, const char *path,
			bool replace);
/* Read and validate a snapshot; NULL with a one-line reason in err. */
json_t *snapshot__load(const char *path, char *err, size_t errlen);
/* The same from len bytes in memory (no NUL needed); name is for err. */
json_t *snapshot__load_buffer(const char *buf, size_t len, const char *name,
			      char *err, size_t errlen);
/* ISO 8601 UTC with milliseconds. */
void snapshot__iso_time(int64_t real_ns, char *buf, size_t size);
/* CLOCK_REALTIME - CLOCK_MONOTONIC, read once: one instant, one time. */
int64_t snapshot__mono_to_real(void);

#endif
