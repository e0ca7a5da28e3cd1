/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Allocator probes for one process: find the file that implements malloc
 * (the executable when static or when it brings its own allocator, else a
 * preloaded allocator library, else libc) from /proc/PID/maps, decide each
 * probe's offset (user/procs/prologue.c) once per file, and attach entry and
 * return uprobes bound to that pid only.
 */
#ifndef MEMPROF_ATTACH_H
#define MEMPROF_ATTACH_H

#include "agent.h"

/* Mark pid traced in BPF (before any probe can fire for it). */
int attach__mark(struct agent *a, pid_t pid);
void attach__unmark(struct agent *a, pid_t pid);
/*
 * Attach t's probes. 0 when done, -EAGAIN when no allocator is mapped yet
 * (just exec'd: retry later), other -errno on failure.
 */
int attach__tracee(struct agent *a, struct tracee *t);
void attach__detach(struct tracee *t);
/*
 * Tell the probes how to walk this process's Python frames when it is a
 * CPython whose layout we know. 0: configured; -ENOENT: not Python;
 * -ENOTSUP: a CPython we cannot walk (warned once, native-only).
 */
int attach__python(struct agent *a, struct tracee *t);
void attach__forget_python(struct agent *a, struct tracee *t);
/* memprof:cell__* markers once the kernel loaded python/'s library. */
int attach__cell_markers(struct agent *a, struct tracee *t);
/* Choose the allocator file among a process's mapped files. */
const char *attach__pick_allocator(char *const *paths, int n, const char *exe);

/* Is this file glibc's libc (libc.so.6, libc-2.x.so)? */
bool attach__is_libc(const char *path);

#endif
