/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Another process's memory, read-only and without side effects: its
 * mappings (/proc/PID/maps), which pages it has (/proc/PID/pagemap), and
 * reads that never fault a page in (an absent page reads as zeros
 * locally: reading it remotely would allocate it in the target,
 * docs/design/census.md section 2.5).
 */
#ifndef MEMPROF_VMEM_H
#define MEMPROF_VMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vma {
	uint64_t lo, hi;
	uint64_t offset, inode;
	char perms[5]; /* "rw-p" */
	char *path; /* "" anonymous, "[heap]", "[stack]", a file */
};

struct vmem {
	pid_t pid;
	int pagemap_fd;
	struct vma *v; /* sorted by lo */
	size_t n, cap;
	uint64_t page_size;
	uint64_t reads, read_bytes; /* process_vm_readv calls and bytes */
	/* vmem__read's pagemap cache: entries for pages [pm_lo, pm_hi). */
	uint64_t *pm;
	uint64_t pm_lo, pm_hi;
	size_t pm_cap;
};

/* Read pid's maps and open its pagemap. 0 or -errno (-ESRCH gone). */
int vmem__open(struct vmem *m, pid_t pid);
void vmem__close(struct vmem *m);
/* The mapping holding addr, or NULL. */
const struct vma *vmem__find(const struct vmem *m, uint64_t addr);
/*
 * Which pages of [lo, hi) (page-aligned) the process has, resident or
 * swapped: bit i of bits[] for page i. 0 or -errno.
 */
int vmem__present(struct vmem *m, uint64_t lo, uint64_t hi, uint64_t *bits);
/*
 * Copy [addr, addr + len) into buf. Pages the process does not have read
 * as zeros and are not touched. 0, or -errno: -ESRCH (process gone),
 * -EFAULT (not mapped any more).
 */
int vmem__read(struct vmem *m, uint64_t addr, void *buf, size_t len);
/* One 8-byte word (same rules). */
int vmem__word(struct vmem *m, uint64_t addr, uint64_t *out);
/*
 * One aligned word, its page looked up alone (same rules): for a few
 * scattered reads, where vmem__word would refill the pagemap cache with a
 * whole window for each.
 */
int vmem__peek(struct vmem *m, uint64_t addr, uint64_t *out);
/*
 * Drop the pagemap cache vmem__read keeps: the next read sees pages the
 * process got since (a torn walk retries with it).
 */
void vmem__forget(struct vmem *m);

#endif
