/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Start "-- CMD ARGS" so the probes are in place before main() runs:
 * the child execs under PTRACE_TRACEME (as the sudo user when run through
 * sudo), the agent plants a breakpoint at the program's entry point
 * (AT_ENTRY), lets the dynamic linker map libc, attaches, then detaches.
 * A launcher (env, chroot, nice...) is followed through its exec first,
 * so the breakpoint is at the entry of the program it starts.
 */
#ifndef MEMPROF_LAUNCH_H
#define MEMPROF_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

/* Where launch__follow left the child (stopped, but for EXITED). */
enum launch_end {
	LAUNCH_PROGRAM, /* at its first exec: no launcher */
	LAUNCH_EXECED, /* at the exec of the program a launcher started */
	LAUNCH_FORKED, /* a launcher forked: the program is its child */
	LAUNCH_EXITED, /* a launcher exited without exec: *status says how */
};

/* Fork and exec argv; returns the pid stopped after exec, or -errno. */
pid_t launch__start(char **argv);
/* Through launchers to the program: an enum launch_end, or -errno. */
int launch__follow(pid_t pid, int *status);
/* Is exe (a path, or a name) one of the launchers followed? */
bool launch__is_launcher(const char *exe);
/* Run the stopped child up to its entry point (libraries mapped). */
int launch__to_entry(pid_t pid);
/* Let it run free. */
int launch__release(pid_t pid);

#endif
