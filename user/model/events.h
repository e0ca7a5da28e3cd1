/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ring-buffer consumer: one typed record at a time into the owning
 * process's heap (allocations) or the process table (fork/exec/exit).
 */
#ifndef MEMPROF_EVENTS_H
#define MEMPROF_EVENTS_H

#include <stddef.h>
#include "agent.h"
#include "memprof.h"

/* ring_buffer__new callback; ctx is the struct agent. */
int events__handle(void *ctx, void *data, size_t size);

/* Hooks the event stage calls into the process stage (user/procs/session.c). */
void session__on_fork(struct agent *a, pid_t parent, pid_t child);
void session__on_exec(struct agent *a, pid_t pid, const char *comm,
		      uint64_t image);
void session__on_exit(struct agent *a, pid_t pid, int exit_code);
/*
 * The OOM killer chose pid (it exits right after); cgroup is its memory
 * cgroup as the kernel named it, NULL when unknown. at_exit: said as it
 * exits (the process was marked a victim), a repeat or a lost first word.
 */
void session__on_oom(struct agent *a, pid_t pid, const char *cgroup,
		     bool at_exit);
/* "/a/b" from a REC_OOM record's names; 0, or -ENOENT when unknown. */
int events__oom_cgroup(const struct rec_oom *r, char *buf, size_t size);

#endif
