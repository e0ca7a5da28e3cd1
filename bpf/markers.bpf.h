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
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct rec_hdr *r;

	if (bare)
		return 0;
	r = reserve(pid, sizeof(*r));
	if (!r)
		return 0;
	r->type = REC_DSO;
	r->pid = pid;
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/* ---- CPython USDT markers (where the interpreter has them) ------------- */

static __always_inline void emit_gc(struct pt_regs *ctx, __u32 done)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_gc *r;
	long v = 0;

	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return;
	bpf_usdt_arg(ctx, 0, &v);
	r->hdr.type = REC_GC;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->done = done;
	r->value = v;
	r->ts_ns = bpf_ktime_get_ns();
	submit(r);
}

SEC("usdt")
int gc_start(struct pt_regs *ctx)
{
	emit_gc(ctx, 0);
	return 0;
}

SEC("usdt")
int gc_done(struct pt_regs *ctx)
{
	emit_gc(ctx, 1);
	return 0;
}

static __always_inline void emit_import(struct pt_regs *ctx, __u32 done)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_import *r;
	long name = 0;

	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return;
	bpf_usdt_arg(ctx, 0, &name);
	r->hdr.type = REC_IMPORT;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->done = done;
	if (bpf_probe_read_user_str(r->module, sizeof(r->module),
				    (void *)name) < 0)
		r->module[0] = '\0';
	submit(r);
}

SEC("usdt")
int import_start(struct pt_regs *ctx)
{
	emit_import(ctx, 0);
	return 0;
}

SEC("usdt")
int import_done(struct pt_regs *ctx)
{
	emit_import(ctx, 1);
	return 0;
}

/*
 * memprof:cell__start(n, file, head) / cell__end(n, file, head, ok), fired
 * by the python/ package's IPython extension around each cell. Cells are
 * seconds apart: these records always wake the agent.
 */
static __always_inline void emit_cell(struct pt_regs *ctx, __u32 done)
{
	__u64 id = bpf_get_current_pid_tgid();
	long n = 0, file = 0, head = 0, ok = 0;
	struct rec_cell *r;

	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return;
	bpf_usdt_arg(ctx, 0, &n);
	bpf_usdt_arg(ctx, 1, &file);
	bpf_usdt_arg(ctx, 2, &head);
	if (done)
		bpf_usdt_arg(ctx, 3, &ok);
	r->hdr.type = REC_CELL;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->done = done;
	r->execution_count = n;
	r->success = ok;
	r->ts_ns = bpf_ktime_get_ns();
	if (bpf_probe_read_user_str(r->file, sizeof(r->file), (void *)file) < 0)
		r->file[0] = '\0';
	if (bpf_probe_read_user_str(r->head, sizeof(r->head), (void *)head) < 0)
		r->head[0] = '\0';
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
}

SEC("usdt")
int cell_start(struct pt_regs *ctx)
{
	emit_cell(ctx, 0);
	return 0;
}

SEC("usdt")
int cell_end(struct pt_regs *ctx)
{
	emit_cell(ctx, 1);
	return 0;
}

#endif
