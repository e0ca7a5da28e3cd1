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
/* A memory cgroup: its path in its hierarchy, and which hierarchy. */
struct memcg {
	char path[1024]; /* "/a/b" as /proc/PID/cgroup says; "" unknown */
	bool v2; /* cgroup2 (memory.max), else the v1 memory controller */
};

/*
 * The memory cgroup in /proc/PID/cgroup text: the v1 memory controller's
 * line, else the v2 "0::" line. 0, or -ENOENT.
 */
int procs__parse_cgroup(const char *text, struct memcg *m);
/*
 * pid's memory cgroup. 0, or -errno: -ESRCH when v1 no longer says (it
 * shows an exiting process in "/").
 */
int procs__memory_cgroup(pid_t pid, struct memcg *m);
/* Is the memory controller on cgroup2 (as this process sees it)? */
bool procs__memcg_v2(void);
/* m's limit in bytes (memory.max, memory.limit_in_bytes); -1 none. */
int64_t procs__memcg_limit(const struct memcg *m);
/* m's count of OOM kills so far; -1 unreadable (e.g. removed). */
int64_t procs__memcg_oom_kills(const struct memcg *m);
/* A limit file's text in bytes; -1 for none ("max", v1's unlimited). */
int64_t procs__parse_limit(const char *text);
/* "oom_kill N" of memory.oom_control (v1) or memory.events (v2); -1. */
int64_t procs__parse_oom_kills(const char *text);
/* Does /proc/PID/stat text say PF_EXITING (or is it unreadable)? */
bool procs__parse_exiting(const char *stat);
bool procs__alive(pid_t pid);
/* Exiting, a zombie, or gone (PF_EXITING, or no /proc/PID/stat). */
bool procs__exiting(pid_t pid);
/* An entry of /proc/PID/auxv (AT_ENTRY, AT_RANDOM...), or 0. */
unsigned long procs__auxv(pid_t pid, unsigned long type);
/* Its image's identity: the first 8 AT_RANDOM bytes, or 0 (gone). */
uint64_t procs__image(pid_t pid);
/*
 * size bytes of pid's memory at addr, through /proc/PID/mem (read only:
 * never written, no page faulted in by us that the process would not).
 * 0, or -errno (-EIO for a short read).
 */
int procs__read_mem(pid_t pid, uint64_t addr, void *buf, size_t size);
/*
 * A path the agent can open for the file pid maps as path (device dev and
 * inode ino, as /proc/PID/maps shows them): path itself when it is that
 * file here (the same root, or a chroot below ours, whose files maps names
 * from our root); else path under /proc/PID/root, for a process in another
 * mount namespace (a container), whose /usr/lib/.../libc.so.6 is not ours
 * and whose /usr/bin/python3.14 may not exist here. 0, or -ENOENT with
 * path copied as it is.
 */
int procs__file_path(pid_t pid, const char *path, dev_t dev, uint64_t ino,
		     char *out, size_t size);
/*
 * rel's path in the folder of the running binary (/proc/self/exe): the
 * files that come with it (python/, build/...). 0 when it is readable,
 * -ENOENT, or -ENAMETOOLONG.
 */
int procs__beside_self(const char *rel, char *out, size_t size);
/* Calls fn for every pid in /proc; stops early when fn returns non-zero. */
int procs__each(int (*fn)(pid_t pid, void *ctx), void *ctx);

#endif
