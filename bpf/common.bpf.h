/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every probe of memprof.bpf.c shares (BPF-only): the ring buffer the
 * records travel in, the drop and walk counters the agent reads from .bss,
 * the set of traced processes, and the reserve/submit pair every record
 * goes through. The stage headers (pystack, alloc, markers, lifecycle)
 * include this first; they are compiled into one object, so these
 * definitions exist once.
 */
#ifndef MEMPROF_COMMON_BPF_H
#define MEMPROF_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memprof.h"

/* Knobs set by the agent before load. */
const volatile bool bare = false; /* benchmark floor: probes do nothing */
/* Wake the agent only past this much unread data; it polls every 100 ms. */
const volatile __u64 wakeup_bytes = 1 << 20;

struct memprof_stats stats = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20); /* resized by the agent */
} events SEC(".maps");

/* tgid -> per-process counters; membership means "traced". */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct proc_cfg);
} traced_pids SEC(".maps");

/* Count a record lost to a full ring buffer, globally and per process. */
static __always_inline void count_drop(struct proc_cfg *cfg)
{
	__sync_fetch_and_add(&stats.dropped, 1);
	if (cfg)
		__sync_fetch_and_add(&cfg->dropped, 1);
}

/* A traced process's counters, or NULL: the one membership test. */
static __always_inline struct proc_cfg *traced(__u32 tgid)
{
	return bpf_map_lookup_elem(&traced_pids, &tgid);
}

/*
 * Allocation records do not wake the agent one by one: it drains the ring
 * every poll interval anyway, and wakeups cost the traced thread. Only a
 * filling ring forces one.
 */
static __always_inline void submit(void *rec)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
				      wakeup_bytes
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(rec, flags);
}

/*
 * Allocator probes are attached per traced pid, so every hit is ours: the
 * per-process counters are looked up only when a record is lost.
 */
static __always_inline void *reserve(__u32 tgid, __u64 size)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);

	if (!rec)
		count_drop(traced(tgid));
	return rec;
}

/*
 * A record of `type` for process tgid, its header filled, or NULL (the
 * loss counted): how every record is begun, so none is sent half-typed.
 */
static __always_inline void *new_rec(__u32 type, __u32 tgid, __u64 size)
{
	struct rec_hdr *h = reserve(tgid, size);

	if (h) {
		h->type = type;
		h->pid = tgid;
	}
	return h;
}

/*
 * How the records of one thread's doings begin: rec_alloc, rec_realloc,
 * rec_gc, rec_import and rec_cell all have the thread id after the header.
 */
struct thread_rec {
	struct rec_hdr hdr;
	__u32 tid;
};

/* Fails the build if record T stops beginning like struct thread_rec. */
#define THREAD_REC(T)                                                      \
	_Static_assert(__builtin_offsetof(struct T, tid) ==                \
			       __builtin_offsetof(struct thread_rec, tid), \
		       #T " begins like struct thread_rec")
THREAD_REC(rec_alloc);
THREAD_REC(rec_realloc);
THREAD_REC(rec_gc);
THREAD_REC(rec_import);
THREAD_REC(rec_cell);

/* A record made by the current thread: header and tid filled, or NULL. */
static __always_inline void *new_thread_rec(__u32 type, __u64 size)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct thread_rec *r = new_rec(type, id >> 32, size);

	if (r)
		r->tid = (__u32)id;
	return r;
}

#endif
