/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Native sites -> module + function + offset. Each traced process keeps a
 * copy of its executable mappings (re-read when an address falls outside
 * them, e.g. after dlopen); ELF symbol tables are shared by path. Sites are
 * resolved when first seen, while the process is alive, so a snapshot
 * written after exit still has names.
 */
#ifndef MEMPROF_SYMBOLIZE_H
#define MEMPROF_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct frame {
	uint64_t addr; /* runtime address (return address of the call) */
	uint64_t offset; /* from the function's start */
	char *function; /* NULL when unknown */
	char *module; /* path of the mapped file, NULL when unknown */
};

struct mapping {
	uint64_t start, end, offset;
	uint64_t ino;
	dev_t dev;
	char *path; /* as the agent opens it (procs__file_path) */
};

struct symbolizer {
	pid_t pid;
	struct mapping *maps;
	size_t nmaps;
	bool gone; /* the process has exited: its maps are never read again */
};

void symbolizer__init(struct symbolizer *s, pid_t pid);
void symbolizer__free(struct symbolizer *s);
/*
 * dst's mappings are src's (a forked child's are its parent's until it
 * maps more: one that exits before the agent reads it still has names).
 */
int symbolizer__clone(struct symbolizer *dst, const struct symbolizer *src);
/*
 * Re-read the mappings; 0, or -errno keeping the copy it has. Once the
 * process is gone (no /proc entry, or no mappings: a zombie), -ESRCH at
 * once: a snapshot of an exited process resolves thousands of sites, and
 * each would try again.
 */
int symbolizer__refresh(struct symbolizer *s);
/* Fill f (owned strings) for addr; unknown parts stay NULL. */
void symbolizer__resolve(struct symbolizer *s, uint64_t addr, struct frame *f);
void frame__free(struct frame *f);
/* Parse one /proc/PID/maps line; 1 when it is a file mapping kept. */
int symbolizer__parse_line(const char *line, struct mapping *m);
/* Drop the shared ELF cache (at exit, for leak checkers). */
void symbolizer__cache_clear(void);

#endif
