/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A walk as JSON, the one thing `memprof-bpf names` hands to
 * python/memprof_bpf/names.py (summarize_graph), which makes the rows and
 * hints big_objs() makes in-process. The format is in
 * docs/snapshot-format.md ("names: the graph").
 */
#ifndef MEMPROF_GRAPH_H
#define MEMPROF_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "names/walk.h"

/* What is said of the process besides its walk. */
struct graph_meta {
	char python[32]; /* "3.11.2" */
	double elapsed; /* seconds the read took */
	int64_t live_bytes; /* the agent's count; -1: no agent traces it */
	bool estimated; /* no block came from an agent */
};

/* One process's graph as a JSON object; 0 or -EIO. */
int graph__write(FILE *f, const struct walk *w, pid_t pid,
		 const struct graph_meta *m);

#endif
