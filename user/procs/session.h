/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which processes are traced and what happens over their lives: start
 * with --pid/--comm/"--", follow forks, re-attach after exec, retry
 * attaches that wait for libc, write a snapshot when a process exits and
 * forget it.
 */
#ifndef MEMPROF_SESSION_H
#define MEMPROF_SESSION_H

#include "agent.h"

/* Start tracing everything the command line names. 0 or exit code. */
int session__start(struct agent *a);
/*
 * Per-poll housekeeping: pending attaches, counters, reaping; rescan
 * /proc for --comm matches when asked (once per interval).
 */
void session__tick(struct agent *a, bool rescan);
/* Write a snapshot of every traced process with the given reason. */
void session__snapshot_all(struct agent *a, const char *reason);
/* Write one process's snapshot; 0 or -errno (reported on stderr). */
int session__snapshot(struct agent *a, struct tracee *t, const char *reason);
/* Final snapshots and detach, at the end of the run. */
void session__finish(struct agent *a, const char *reason);
/* Is there anything left to trace (or to wait for)? */
bool session__active(const struct agent *a);

#endif
