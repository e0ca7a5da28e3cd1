/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records shared by the BPF probes (bpf/memprof.bpf.c) and the agent (user/).
 * Every ring-buffer record starts with struct rec_hdr; the consumer switches
 * on hdr.type. Only __u64-style types here: this header is compiled both
 * against vmlinux.h and against the UAPI headers.
 */
#ifndef MEMPROF_H
#define MEMPROF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MEMPROF_COMM_LEN 16

/* Ring-buffer record types. */
enum rec_type {
	REC_ALLOC = 1, /* a block appeared: malloc, calloc, memalign, ... */
	REC_FREE = 2, /* a block went away: free */
	REC_REALLOC = 3, /* realloc/reallocarray: old block -> new block */
	REC_MMAP = 4, /* anonymous mapping created */
	REC_MUNMAP = 5, /* range unmapped (may be partial) */
	REC_MREMAP = 6, /* mapping resized or moved */
	REC_FORK = 7, /* a traced process forked a new process */
	REC_EXEC = 8, /* a traced (or, when watching, any) process exec'd */
	REC_EXIT = 9, /* the last thread of a traced process exited */
	REC_TYPE_MAX,
};

/* Allocator entry points the probes know about (rec_alloc.fn). */
enum alloc_fn {
	FN_MALLOC = 0,
	FN_CALLOC,
	FN_REALLOC,
	FN_REALLOCARRAY,
	FN_FREE,
	FN_POSIX_MEMALIGN,
	FN_ALIGNED_ALLOC,
	FN_MEMALIGN,
	FN_VALLOC,
	FN_PVALLOC,
	FN_MMAP,
	FN_MUNMAP,
	FN_MREMAP,
	FN_MAX,
};

struct rec_hdr {
	__u32 type; /* enum rec_type */
	__u32 pid; /* tgid of the process */
};

/* 40 bytes: the common case is sized to fit one cache line with header. */
struct rec_alloc {
	struct rec_hdr hdr;
	__u32 tid;
	__u32 fn; /* enum alloc_fn */
	__u64 addr;
	__u64 size;
	__u64 site; /* return address in the caller (native site) */
};

/* 16 bytes: frees are the most frequent event, keep them small. */
struct rec_free {
	struct rec_hdr hdr;
	__u64 addr;
};

/* rec_realloc.flags */
#define REALLOC_REMAPPED 1 /* moved by mremap: never two copies at once */

struct rec_realloc {
	struct rec_hdr hdr;
	__u32 tid;
	__u16 fn;
	__u16 flags;
	__u64 old_addr;
	__u64 new_addr; /* 0 when the call failed or freed (size 0) */
	__u64 size;
	__u64 site;
};

struct rec_mmap {
	struct rec_hdr hdr;
	__u64 addr;
	__u64 len;
	__u64 site;
};

struct rec_munmap {
	struct rec_hdr hdr;
	__u64 addr;
	__u64 len;
};

struct rec_mremap {
	struct rec_hdr hdr;
	__u64 old_addr;
	__u64 old_len;
	__u64 new_addr;
	__u64 new_len;
	__u64 site;
};

/* Process lifecycle: fork (pid = parent, child set), exec, exit. */
struct rec_proc {
	struct rec_hdr hdr;
	__u32 child; /* REC_FORK: the new process */
	__s32 exit_code; /* REC_EXIT: task->exit_code (signal in low 7 bits) */
	__u64 ts_ns; /* CLOCK_MONOTONIC */
	char comm[MEMPROF_COMM_LEN];
};

/* Per-process value of the traced_pids map. */
struct proc_cfg {
	__u64 dropped; /* ring buffer full: records lost for this process */
};

/* Global counters in .bss, read by the agent. */
struct memprof_stats {
	__u64 dropped; /* all records lost to a full ring buffer */
	__u64 nested; /* allocator calls made inside another (not counted) */
	__u64 exec_dropped; /* exec notifications lost */
	__u64 no_state; /* per-thread call state unavailable at an entry */
};

#endif /* MEMPROF_H */
