/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The census of each process the agent attaches to while it runs
 * (census/census.h): asked for right after its probes are in, when the
 * heap's window opens (model/before.h); read on a thread of its own, one
 * process at a time, while the event loop goes on; merged into the heap
 * on the main thread at the next tick, once the ring buffer is drained.
 * The process is never stopped.
 */
#ifndef MEMPROF_CENSUS_JOB_H
#define MEMPROF_CENSUS_JOB_H

#include "agent.h"

/* t's probes are in: take its census (or note --no-census). */
void census_job__request(struct agent *a, struct tracee *t);
/* Per tick: merge a finished census, start the next one. */
void census_job__poll(struct agent *a);
/* At the end: wait for the running census and merge it; drop the rest. */
void census_job__finish(struct agent *a);

#endif
