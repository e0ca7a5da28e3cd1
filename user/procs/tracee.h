/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One traced process: identity, heap, resolved sites, probe links, and the
 * table of all of them. The table is indexed by pid for the event path.
 */
#ifndef MEMPROF_TRACEE_H
#define MEMPROF_TRACEE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "census/census.h"
#include "model/cells.h"
#include "model/heap.h"
#include "procs.h"
#include "pyruntime.h"
#include "model/pystacks.h"
#include "model/site.h"
#include "model/timeline.h"
#include "symbolize.h"

#define TRACEE_MAX_LINKS 48

struct bpf_link;

enum attach_state {
	ATTACH_PENDING, /* allocator library not mapped yet: retry */
	ATTACH_DONE,
	ATTACH_FAILED,
	ATTACH_BLOCKED, /* another tracer's probe is in the way: retry */
};

/* Garbage collections seen through CPython's USDT markers. */
struct gc_stats {
	bool probed; /* the markers are attached */
	bool running;
	uint64_t started_ns, total_ns;
	uint64_t collections, objects, bytes_freed;
};

/* The outermost import running on a thread (python:import__* USDT). */
#define TRACEE_IMPORT_THREADS 8
struct import_state {
	pid_t tid;
	int depth;
	char module[64];
};

struct tracee {
	pid_t pid;
	char comm[16];
	char *cmdline;
	bool primary; /* the command started with "--" */
	bool forked; /* followed from a traced parent, not named by the user */
	struct sites sites; /* what each site is (model/site.h) */
	struct heap heap; /* bytes per site id */
	struct pystacks py;
	struct cells cells; /* notebook cell runs (user/model/cells.c) */
	bool cell_markers; /* memprof:cell__* USDT attached */
	bool python; /* py_procs configured for it */
	bool recorder; /* allocations from the in-process recorder's ring */
	bool recorder_late; /* its ring was adopted: it ran unrecorded */
	int ring; /* which of the agent's rings (user/recorder/recording.c) */
	uint64_t ring_at; /* where this image maps that ring's header */
	uint64_t image; /* its image's AT_RANDOM bytes (REC_IMAGE), 0 unknown */
	struct py_layout pylay; /* as read from this process (3.13+) */
	const struct py_layout *pylayout; /* &pylay once python */
	struct gc_stats gc; /* from python:gc__* USDT markers */
	struct import_state imports[TRACEE_IMPORT_THREADS];
	struct symbolizer sym;
	struct bpf_link *links[TRACEE_MAX_LINKS];
	int nlinks;
	int py_first; /* links[py_first..nlinks) are Python's, once python */
	char alloc_lib[4096]; /* file the allocator probes are in */
	char attach_error[4096 + 256]; /* why the last attach failed, one line */
	enum attach_state attach;
	bool replanned; /* its probes moved to another allocator (exec) */
	int attach_tries;
	uint64_t allocs_prev; /* for allocations per second */
	double alloc_rate;
	uint64_t dropped; /* from the BPF per-process counter */
	bool exited;
	int exit_code;
	bool oom; /* killed by the OOM killer (its record, or the signal) */
	struct memcg memcg; /* its memory cgroup (attach, exec, OOM record) */
	int64_t oom_limit; /* that cgroup's limit, -1 none */
	int64_t oom_kills; /* that cgroup's OOM kills when noted, -1 unknown */
	uint64_t started_ns;
	struct census_summary census; /* what it held before attach */
	unsigned census_gen; /* bumped by exec: a census read before is void */
	struct timeline timeline; /* live bytes over time (model/timeline.h) */
};

struct tracees {
	struct tracee **v;
	size_t len, cap;
	struct tracee *last; /* most events come in runs from one pid */
};

struct tracee *tracee__new(pid_t pid, bool primary);
void tracee__delete(struct tracee *t);
/* Refresh comm and command line from /proc. */
void tracee__read_identity(struct tracee *t);
/* Resolve every site created since the last call (while alive). */
void tracee__resolve_sites(struct tracee *t);
/* A site seen for the first time: its counters, cell run and name. */
int tracee__new_site(struct tracee *t, uint32_t site, uint64_t now);

/*
 * The site of an allocation at ip under Python stack (0: none), made
 * while import ran (or NULL): one probe when known; -1 on ENOMEM. Inline:
 * it is the event path, and the unit tests make sites the same way.
 */
static inline int64_t tracee__site(struct tracee *t, uint64_t ip,
				   uint64_t stack, const char *import,
				   uint64_t now)
{
	int64_t site = sites__lookup_or_add(&t->sites, ip, stack, import);

	if (site >= 0 && (size_t)site >= t->heap.nsites &&
	    tracee__new_site(t, site, now))
		return -1;
	return site;
}

/*
 * The "(before attach)" sites, one per census kind, in the
 * "(before attach)" cell run, set in the heap's before.site (made once).
 * 0 or -ENOMEM.
 */
int tracee__before_sites(struct tracee *t, uint64_t now);

/*
 * The agent's tick (and each snapshot): the heap's highest live bytes
 * since the last sample into the timeline, and the peak into its bucket
 * (a census can raise the peak above any live figure the heap saw).
 */
void tracee__sample(struct tracee *t, uint64_t now);

/* Track import start/done on a thread; the import running on tid. */
void tracee__import(struct tracee *t, pid_t tid, bool done, const char *module);
const char *tracee__importing(const struct tracee *t, pid_t tid);
/* Copy a parent's sites, cell runs and Python tables (fork). */
int tracee__inherit(struct tracee *c, const struct tracee *p);
/* Forget sites and Python tables (exec). */
void tracee__forget_sites(struct tracee *t);

int tracees__add(struct tracees *ts, struct tracee *t);
struct tracee *tracees__find(struct tracees *ts, pid_t pid);
void tracees__remove(struct tracees *ts, pid_t pid);
void tracees__free(struct tracees *ts);

#endif
