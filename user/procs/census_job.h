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

struct loop;

/*
 * Join the loop: a census done is merged at once (its thread says so
 * through an eventfd). Before session__start. 0 or -errno (then the tick
 * merges).
 */
int census_job__start(struct agent *a, struct loop *loop);
void census_job__stop(struct agent *a, struct loop *loop);

/* t's probes are in: take its census (or note --no-census). */
void census_job__request(struct agent *a, struct tracee *t);
/* Per tick: merge a finished census, start the next one. */
void census_job__poll(struct agent *a);
/*
 * t exited (called inside the ring's drain, before its last snapshot):
 * its census, if being read, is waited for and merged; if queued, given up.
 */
void census_job__on_exit(struct agent *a, struct tracee *t);
/* At the end: wait for the running census and merge it; drop the rest. */
void census_job__finish(struct agent *a);

#endif
