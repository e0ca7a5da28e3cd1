/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Markers: points where a traced program says what it is doing. ld.so's
 * debugger hook (libraries mapped or unmapped), CPython's gc and import
 * USDT probes, and the notebook extension's cell probes. Each becomes one
 * record; none is on the allocation path.
 */
#ifndef MEMPROF_MARKERS_BPF_H
#define MEMPROF_MARKERS_BPF_H

#include "common.bpf.h"
#include <bpf/usdt.bpf.h>

/*
 * ---- shared libraries -----------------------------------------------------
 * ld.so calls _dl_debug_state() (the debuggers' r_brk hook) around every
 * dlopen/dlclose. Its mappings come from ld.so's own mmap, not libc's, so
 * this is how the agent hears of them: it re-reads the process's mappings
 * at once, while they exist, and can name sites in the new library even
 * if the process exits before their records are read.
 */
SEC("uprobe")
int BPF_KPROBE(dso_change)
{
	struct rec_hdr *r;

	if (bare)
		return 0;
	r = new_rec(REC_DSO, bpf_get_current_pid_tgid() >> 32, sizeof(*r));
	if (r)
		bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/* ---- USDT markers: CPython's gc and import, notebook cells ------------- */

/*
 * pid -> address, in pid, of its recorder ring's reserved count (struct
 * shmring_hdr): set by the agent for a process that records in-process.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} recorder_cuts SEC(".maps");

/* How far the calling process's recorder ring is reserved, or 0. */
static __always_inline __u64 recorder_cut(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *at = bpf_map_lookup_elem(&recorder_cuts, &pid), cut = 0;

	if (at)
		bpf_probe_read_user(&cut, sizeof(cut), (void *)*at);
	return cut;
}

/* USDT argument i as a number (0 when the probe has no such argument). */
static __always_inline long usdt_long(struct pt_regs *ctx, __u64 i)
{
	long v = 0;

	bpf_usdt_arg(ctx, i, &v);
	return v;
}

/* USDT argument i, a C string, copied into buf ("" when unreadable). */
static __always_inline void usdt_str(struct pt_regs *ctx, __u64 i, char *buf,
				     __u32 size)
{
	if (bpf_probe_read_user_str(buf, size, (void *)usdt_long(ctx, i)) < 0)
		buf[0] = '\0';
}

/*
 * A marker's two USDT programs, which differ only in name and in done:
 * start (0) and its end (1). The names are what the agent attaches.
 */
#define MARKER_PAIR(start, end, emit)              \
	SEC("usdt") int start(struct pt_regs *ctx) \
	{                                          \
		emit(ctx, 0);                      \
		return 0;                          \
	}                                          \
	SEC("usdt") int end(struct pt_regs *ctx)   \
	{                                          \
		emit(ctx, 1);                      \
		return 0;                          \
	}

/* python:gc__start(generation) / gc__done(collected), where built in. */
static __always_inline void emit_gc(struct pt_regs *ctx, __u32 done)
{
	struct rec_gc *r = new_thread_rec(REC_GC, sizeof(*r));

	if (!r)
		return;
	r->done = done;
	r->value = usdt_long(ctx, 0);
	r->ts_ns = bpf_ktime_get_ns();
	r->cut = recorder_cut();
	submit(r);
}

MARKER_PAIR(gc_start, gc_done, emit_gc)

/* python:import__find__load__start(module) / __done(module, found). */
static __always_inline void emit_import(struct pt_regs *ctx, __u32 done)
{
	struct rec_import *r = new_thread_rec(REC_IMPORT, sizeof(*r));

	if (!r)
		return;
	r->done = done;
	r->cut = recorder_cut();
	usdt_str(ctx, 0, r->module, sizeof(r->module));
	submit(r);
}

MARKER_PAIR(import_start, import_done, emit_import)

/*
 * memprof:cell__start(n, file, head) / cell__end(n, file, head, ok), fired
 * by the python/ package's IPython extension around each cell. Cells are
 * seconds apart: these records always wake the agent.
 */
static __always_inline void emit_cell(struct pt_regs *ctx, __u32 done)
{
	struct rec_cell *r = new_thread_rec(REC_CELL, sizeof(*r));

	if (!r)
		return;
	r->done = done;
	r->execution_count = usdt_long(ctx, 0);
	r->success = done ? usdt_long(ctx, 3) : 0;
	r->ts_ns = bpf_ktime_get_ns();
	r->cut = recorder_cut();
	usdt_str(ctx, 1, r->file, sizeof(r->file));
	usdt_str(ctx, 2, r->head, sizeof(r->head));
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
}

MARKER_PAIR(cell_start, cell_end, emit_cell)

#endif
