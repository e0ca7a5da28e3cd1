/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Start "-- CMD ARGS" so the probes are in place before main() runs:
 * the child execs under PTRACE_TRACEME (as the sudo user when run through
 * sudo), the agent plants a breakpoint at the program's entry point
 * (AT_ENTRY), lets the dynamic linker map libc, attaches, then detaches.
 */
#ifndef MEMPROF_LAUNCH_H
#define MEMPROF_LAUNCH_H

#include <sys/types.h>

/* Fork and exec argv; returns the pid stopped after exec, or -errno. */
pid_t launch__start(char **argv);
/* Run the stopped child up to its entry point (libraries mapped). */
int launch__to_entry(pid_t pid);
/* Let it run free. */
int launch__release(pid_t pid);

#endif
