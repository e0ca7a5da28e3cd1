/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Command line -> struct env. Pure: no side effects, unit-tested. */
#ifndef MEMPROF_OPTIONS_H
#define MEMPROF_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MAX_PIDS 64
#define MAX_COMMS 16

/* What the agent's snapshot files hold (--format). */
enum snap_format {
	SNAP_SNAPSHOT,
	SNAP_JSON,
	SNAP_FOLDED,
	SNAP_HTML,
	SNAP_PPROF
};

struct env {
	pid_t pids[MAX_PIDS];
	int npids;
	const char *comms[MAX_COMMS];
	int ncomms;
	char **command; /* argv after "--", NULL-terminated */
	const char *output; /* -o FILE: the command's snapshot */
	const char *snapshot_dir;
	enum snap_format format; /* --format, or from -o's suffix */
	bool format_set;
	bool snapshot_dir_set; /* -D given: forked children get files too */
	double interval; /* seconds between batch lines */
	double duration; /* 0 = until stopped */
	double snapshot_every; /* rolling snapshot period, 0 = none */
	bool batch;
	int verbose;
	unsigned ringbuf_mb;
	unsigned py_depth; /* Python frames walked per allocation */
	bool pymalloc; /* probe _PyObject_Malloc & co. (exact small objects) */
	bool no_census; /* don't count what a running process already holds */
	bool all_snapshots; /* -D: every forked child's file, however small */
	bool recorder; /* the command records in-process (the default) */
	bool probes_set; /* --probes given */
	bool bench_floor; /* probes do nothing: the benchmark's floor */
};

/*
 * Parse argv into env. Returns 0 to run, 1 when --help/--version was
 * printed, or -1 after printing one error line (exit code 2).
 */
int options__parse(int argc, char **argv, struct env *env);

#endif
