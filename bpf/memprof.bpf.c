// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memprof-bpf probes: allocator entry/return uprobes (attached per traced
 * pid by the agent) and process lifecycle tracepoints. Each event becomes one
 * typed record in the ring buffer; the agent (user/events.c) does the
 * bookkeeping. Nothing here walks or aggregates: a probe hit must stay cheap.
 */
#include "common.bpf.h"
#include "pystack.bpf.h"
#include <bpf/usdt.bpf.h>

#define MAP_ANONYMOUS 0x20
#define MAP_STACK 0x20000
#define PAGE_SIZE 4096ULL
/* mmap/mremap return -errno in [-4095, -1] on failure (MAP_FAILED). */
#define IS_ERR_ADDR(a) ((__u64)(a) >= (__u64)-4095)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs set by the agent before load. */
const volatile bool bare = false; /* benchmark floor: probes do nothing */
const volatile bool watch_exec = false; /* report every exec (--comm) */

/*
 * Per-thread state of the outermost allocator call in flight. Task storage
 * goes away with the thread, so a thread that dies inside malloc leaks
 * nothing. Nesting is decided by the stack pointer, not a depth counter:
 * a lost return probe can then never wedge a thread in "nested" state.
 */
struct call_state {
	__u64 sp; /* stack pointer at entry of the outermost call; 0 = none */
	__u64 site;
	__u64 arg0, arg1, arg2;
	__u64 stack; /* Python stack id at entry, 0 = none */
	__u32 fn;
	__u32 flags; /* REALLOC_REMAPPED seen inside this call */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct call_state);
} calls SEC(".maps");

/* n * size, or false when it overflows (the call then fails). */
static __always_inline bool mul_ok(__u64 n, __u64 size, __u64 *total)
{
	__u64 limit = ~0ULL;

	/* Hide the pattern from LLVM, which would emit an unsupported __multi3. */
	asm volatile("" : "+r"(limit));
	if (size && n > limit / size)
		return false;
	*total = n * size;
	return true;
}

static __always_inline struct call_state *thread_calls(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return bpf_task_storage_get(&calls, t, 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/*
 * True when this call runs inside another traced allocator call on the same
 * thread (calloc -> malloc, malloc -> mmap, realloc -> mremap): the outer
 * call accounts for the bytes, so the inner one must not. Equal sp is a
 * tail call (reallocarray jumps to realloc): nested too.
 */
static __always_inline bool nested(struct call_state *cs, __u64 sp)
{
	return cs->sp && sp <= cs->sp;
}

/* Remember an outermost call's arguments until its return probe fires. */
static __always_inline void enter(struct pt_regs *ctx, __u32 fn, __u64 a0,
				  __u64 a1, __u64 a2)
{
	struct call_state *cs;
	__u64 sp = PT_REGS_SP(ctx), site = 0;

	if (bare)
		return;
	cs = thread_calls();
	if (!cs) {
		__sync_fetch_and_add(&stats.no_state, 1);
		return;
	}
	if (nested(cs, sp)) {
		__sync_fetch_and_add(&stats.nested, 1);
		return;
	}
	bpf_probe_read_user(&site, sizeof(site), (void *)sp);
	cs->sp = sp;
	cs->site = site;
	cs->fn = fn;
	cs->flags = 0;
	cs->stack = py_stack(bpf_get_current_pid_tgid() >> 32);
	cs->arg0 = a0;
	cs->arg1 = a1;
	cs->arg2 = a2;
}

/*
 * At a return probe: the outermost call's state if this return belongs to
 * it (sp is one slot above the entry sp after `ret`), else NULL.
 */
static __always_inline struct call_state *leave(struct pt_regs *ctx)
{
	struct call_state *cs;

	if (bare)
		return NULL;
	cs = thread_calls();
	if (!cs || !cs->sp || PT_REGS_SP(ctx) != cs->sp + 8)
		return NULL;
	cs->sp = 0;
	return cs;
}

static __always_inline void emit_alloc(struct call_state *cs, __u64 addr,
				       __u64 size)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_alloc *r;

	if (!addr)
		return; /* failed allocation: nothing changed */
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return;
	r->hdr.type = REC_ALLOC;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->fn = cs->fn;
	r->addr = addr;
	r->size = size;
	r->site = cs->site;
	r->stack = cs->stack;
	submit(r);
}

/* ---- malloc family: entry records arguments, return emits -------------- */

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	enter(ctx, FN_MALLOC, size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 n, __u64 size)
{
	__u64 total;

	if (!mul_ok(n, size, &total))
		total = 0; /* calloc fails and returns NULL */
	enter(ctx, FN_CALLOC, total, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memalign_enter, __u64 align, __u64 size)
{
	enter(ctx, FN_MEMALIGN, size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(valloc_enter, __u64 size)
{
	enter(ctx, FN_VALLOC, size, 0, 0);
	return 0;
}

/* pvalloc hands out whole pages: the caller owns the rounded size. */
SEC("uprobe")
int BPF_KPROBE(pvalloc_enter, __u64 size)
{
	enter(ctx, FN_PVALLOC, (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), 0, 0);
	return 0;
}

/* Shared by every function returning the new block's address. */
SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);

	if (cs)
		emit_alloc(cs, addr, cs->arg0);
	return 0;
}

/* posix_memalign returns 0 and stores the block through its first arg. */
SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, void **memptr, __u64 align, __u64 size)
{
	enter(ctx, FN_POSIX_MEMALIGN, size, (__u64)memptr, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_return, int ret)
{
	struct call_state *cs = leave(ctx);
	__u64 addr = 0;

	if (!cs || ret != 0)
		return 0;
	bpf_probe_read_user(&addr, sizeof(addr), (void *)cs->arg1);
	emit_alloc(cs, addr, cs->arg0);
	return 0;
}

/* ---- realloc: one record carries the free and the alloc ---------------- */

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 ptr, __u64 size)
{
	enter(ctx, FN_REALLOC, size, ptr, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(reallocarray_enter, __u64 ptr, __u64 n, __u64 size)
{
	__u64 total;

	if (!mul_ok(n, size, &total))
		total = ~0ULL; /* fails with ENOMEM, block untouched */
	enter(ctx, FN_REALLOCARRAY, total, ptr, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(realloc_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_realloc *r;

	if (!cs)
		return 0;
	/* Failure with size > 0 leaves the old block alone: no change. */
	if (!addr && cs->arg0)
		return 0;
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->hdr.type = REC_REALLOC;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->fn = cs->fn;
	r->flags = cs->flags;
	r->old_addr = cs->arg1;
	r->new_addr = addr;
	r->size = cs->arg0;
	r->site = cs->site;
	r->stack = cs->stack;
	submit(r);
	return 0;
}

/*
 * ---- free: entry only ----------------------------------------------------
 * The agent may attach this past a leading NULL check (see user/prologue.c),
 * so the stack pointer is not the entry one; it is only compared for
 * nesting, which stays correct because pushes only move sp further down.
 */
static __always_inline void emit_free(struct pt_regs *ctx, __u64 addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_state *cs;
	struct rec_free *r;

	if (bare || !addr)
		return;
	cs = thread_calls();
	if (cs && nested(cs, PT_REGS_SP(ctx))) {
		__sync_fetch_and_add(&stats.nested, 1);
		return;
	}
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return;
	r->hdr.type = REC_FREE;
	r->hdr.pid = id >> 32;
	r->addr = addr;
	submit(r);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 addr)
{
	emit_free(ctx, addr);
	return 0;
}

/*
 * ---- pymalloc (--pymalloc) ------------------------------------------------
 * CPython's _PyObject_Malloc family takes the allocator's ctx first. Objects
 * over 512 bytes fall through to malloc and arenas come from mmap, both
 * inside these calls: nested, so each object is counted once, here.
 */
SEC("uprobe")
int BPF_KPROBE(pymalloc_malloc_enter, void *c, __u64 size)
{
	enter(ctx, FN_PYMALLOC, size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pymalloc_calloc_enter, void *c, __u64 n, __u64 size)
{
	__u64 total;

	if (!mul_ok(n, size, &total))
		total = 0; /* returns NULL */
	enter(ctx, FN_PYCALLOC, total, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pymalloc_realloc_enter, void *c, __u64 ptr, __u64 size)
{
	enter(ctx, FN_PYREALLOC, size, ptr, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pymalloc_free_enter, void *c, __u64 addr)
{
	emit_free(ctx, addr);
	return 0;
}

/*
 * ---- code objects -------------------------------------------------------
 * code_dealloc (PyCode_Type.tp_dealloc): a code object's address may now
 * come back as another code object, so cached frame chains of this process
 * stop matching (bpf/pystack.bpf.h). Rare: notebook cells, exec'd code.
 */
SEC("uprobe")
int BPF_KPROBE(code_dealloc_enter, __u64 code)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct py_cfg *cfg = bpf_map_lookup_elem(&py_procs, &pid);
	struct code_key key = { .pid = pid, .code = code };
	struct rec_code_free *r;

	if (!cfg)
		return 0;
	__sync_fetch_and_add(&cfg->code_gen, 1);
	if (!bpf_map_lookup_elem(&code_births, &key))
		return 0; /* never in a stack: nobody needs to know */
	bpf_map_delete_elem(&code_births, &key);
	r = reserve(pid, sizeof(*r));
	if (!r)
		return 0;
	r->hdr.type = REC_CODE_FREE;
	r->hdr.pid = pid;
	r->code = code;
	r->ts_ns = bpf_ktime_get_ns();
	submit(r);
	return 0;
}

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

/* ---- anonymous mappings ------------------------------------------------- */

/*
 * File mappings are not heap, and thread stacks (MAP_STACK, 8 MiB of
 * mostly untouched address space per pthread) are not either; nor are
 * PROT_NONE reservations, which hold no memory (glibc reserves 128 MiB
 * for each thread arena, from inside free() on a thread's first free,
 * where no return probe marks us "inside the allocator").
 */
SEC("uprobe")
int BPF_KPROBE(mmap_enter, __u64 addr, __u64 len, __u64 prot, __u64 flags)
{
	bool heap = (flags & MAP_ANONYMOUS) && !(flags & MAP_STACK) && prot;

	enter(ctx, FN_MMAP, (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), heap, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(mmap_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_mmap *r;

	if (!cs || !cs->arg1 || IS_ERR_ADDR(addr))
		return 0;
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->hdr.type = REC_MMAP;
	r->hdr.pid = id >> 32;
	r->addr = addr;
	r->len = cs->arg0;
	r->site = cs->site;
	r->stack = cs->stack;
	submit(r);
	return 0;
}

/* munmap's result is not needed: a failed munmap unmaps nothing we track. */
SEC("uprobe")
int BPF_KPROBE(munmap_enter, __u64 addr, __u64 len)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_state *cs;
	struct rec_munmap *r;

	if (bare)
		return 0;
	cs = thread_calls();
	if (cs && nested(cs, PT_REGS_SP(ctx)))
		return 0;
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->hdr.type = REC_MUNMAP;
	r->hdr.pid = id >> 32;
	r->addr = addr;
	r->len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	submit(r);
	return 0;
}

/*
 * A realloc that moves its block with mremap never holds two copies: note
 * it on the outer call so the agent skips the malloc-copy-free transient.
 */
static __always_inline void note_remap(struct pt_regs *ctx)
{
	struct call_state *cs = thread_calls();

	if (cs && nested(cs, PT_REGS_SP(ctx)) &&
	    (cs->fn == FN_REALLOC || cs->fn == FN_REALLOCARRAY ||
	     cs->fn == FN_PYREALLOC))
		cs->flags |= REALLOC_REMAPPED;
}

SEC("uprobe")
int BPF_KPROBE(mremap_enter, __u64 old_addr, __u64 old_len, __u64 new_len)
{
	if (!bare)
		note_remap(ctx);
	enter(ctx, FN_MREMAP, old_addr,
	      (old_len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1),
	      (new_len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(mremap_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct rec_mremap *r;

	if (!cs || IS_ERR_ADDR(addr))
		return 0;
	r = reserve(id >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->hdr.type = REC_MREMAP;
	r->hdr.pid = id >> 32;
	r->old_addr = cs->arg0;
	r->old_len = cs->arg1;
	r->new_addr = addr;
	r->new_len = cs->arg2;
	r->site = cs->site;
	submit(r);
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

/* ---- process lifecycle -------------------------------------------------- */

static __always_inline void emit_proc(__u32 type, __u32 pid, __u32 child,
				      int code, struct task_struct *t)
{
	struct proc_cfg *cfg = traced(pid);
	struct rec_proc *r;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		if (type == REC_EXEC && !cfg)
			__sync_fetch_and_add(&stats.exec_dropped, 1);
		else
			count_drop(cfg);
		return;
	}
	r->hdr.type = type;
	r->hdr.pid = pid;
	r->child = child;
	r->exit_code = code;
	r->ts_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&r->comm, t, comm);
	/* Rare and urgent: a forked child waits for its probes. */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
}

/* The parent link was renamed __parent (RCU) in 6.15: accept either. */
struct kernfs_node___new {
	struct kernfs_node *__parent;
} __attribute__((preserve_access_index));

struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node___new, __parent))
		return BPF_CORE_READ((struct kernfs_node___new *)kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The cgroup directory of task's memory controller (v1 or v2), or NULL. */
static __always_inline struct kernfs_node *memcg_node(struct task_struct *task)
{
	struct cgroup_subsys_state *css;
	int id;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return NULL;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id < 0 || id >= CGROUP_SUBSYS_COUNT)
		return NULL;
	css = BPF_CORE_READ(task, cgroups, subsys[id]);
	return css ? BPF_CORE_READ(css, cgroup, kn) : NULL;
}

/*
 * Name task's memory cgroup while it surely exists: the kernel's own
 * names, innermost first, up to (not including) the hierarchy's root.
 */
static __always_inline void memcg_names(struct task_struct *task,
					struct rec_oom *r)
{
	struct kernfs_node *kn = memcg_node(task), *up;
	long n;
	int i;

	r->depth = MEMCG_UNKNOWN;
	for (i = 0; kn && i <= MEMCG_DEPTH; i++) {
		up = kn_parent(kn);
		if (!up) {
			r->depth = i; /* kn is the root */
			return;
		}
		if (i == MEMCG_DEPTH)
			return; /* deeper than a record holds */
		n = bpf_probe_read_kernel_str(r->names[i], MEMCG_NAME_LEN,
					      BPF_CORE_READ(kn, name));
		if (n <= 0 || n >= MEMCG_NAME_LEN)
			return; /* unreadable, or perhaps cut short */
		kn = up;
	}
}

/* Rare and urgent: the victim is about to go. */
static __always_inline void emit_oom(struct task_struct *task, __u32 tgid,
				     __u32 from)
{
	struct rec_oom *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count_drop(traced(tgid));
		return;
	}
	r->hdr.type = REC_OOM;
	r->hdr.pid = tgid;
	r->from = from;
	memcg_names(task, r);
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
}

/*
 * A traced process's new child process is traced from its first
 * instruction on: entering it into traced_pids here closes the race with
 * the agent, which attaches the child's uprobes when it sees REC_FORK.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct proc_cfg zero = {};

	if (child->pid != ctgid || !traced(ptgid))
		return 0; /* a new thread, or not ours */
	bpf_map_update_elem(&traced_pids, &ctgid, &zero, BPF_NOEXIST);
	emit_proc(REC_FORK, ptgid, ctgid, 0, child);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (watch_exec || traced(tgid))
		emit_proc(REC_EXEC, tgid, 0, 0, p);
	return 0;
}

/* Only the last thread's exit ends the process (signal->live hits 0). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (!traced(tgid) || BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	/* An OOM victim says so again: its mark_victim record may be lost. */
	if (BPF_CORE_READ(p, signal, oom_mm))
		emit_oom(p, tgid, OOM_AT_EXIT);
	emit_proc(REC_EXIT, tgid, 0, p->exit_code, p);
	return 0;
}

/*
 * The OOM killer picked a traced process (memory cgroup or global). The
 * record wakes the agent at once; its exit snapshot then says "oom".
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom, struct task_struct *task, uid_t uid)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (traced(tgid))
		emit_oom(task, tgid, OOM_MARKED);
	return 0;
}
