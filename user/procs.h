/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What /proc says about a process, and which processes --comm selects. */
#ifndef MEMPROF_PROCS_H
#define MEMPROF_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * --comm NAME matches a process whose comm is NAME, or whose command line
 * has NAME as a word or module: an argument, its basename, a dotted or
 * underscored prefix ("ipykernel" matches "-m ipykernel_launcher" and
 * "ipykernel.kernelapp"). cmdline is NUL-separated, len bytes.
 */
bool procs__match(const char *name, const char *comm, const char *cmdline,
		  size_t len);

int procs__read_comm(pid_t pid, char *buf, size_t size);
/* NUL-separated argv; returns its length or -errno. */
ssize_t procs__read_cmdline(pid_t pid, char *buf, size_t size);
/* Readable one-line command line (NULs become spaces). */
void procs__cmdline_text(char *cmdline, size_t len);
uint64_t procs__rss_bytes(pid_t pid);
/*
 * The memory cgroup of pid (v1 memory controller, else v2) and its limit
 * in bytes (-1: none or unreadable). 0, or -errno.
 */
int procs__memory_cgroup(pid_t pid, char *path, size_t size, int64_t *limit);
bool procs__alive(pid_t pid);
/* Calls fn for every pid in /proc; stops early when fn returns non-zero. */
int procs__each(int (*fn)(pid_t pid, void *ctx), void *ctx);

#endif
