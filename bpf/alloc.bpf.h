/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Allocator probes: entry/return uprobes on libc's malloc family, free,
 * mmap/munmap/mremap and CPython's object allocator, attached per traced
 * pid by the agent (user/attach.c). An entry remembers the outermost call's
 * arguments, site and Python stack; its return emits one record. These are
 * the hot path: every instruction here is paid per allocation.
 */
#ifndef MEMPROF_ALLOC_BPF_H
#define MEMPROF_ALLOC_BPF_H

#include "common.bpf.h"
#include "pystack.bpf.h"

#define MAP_ANONYMOUS 0x20
#define MAP_STACK 0x20000
#define PAGE_SIZE 4096ULL
/* mmap/mremap return -errno in [-4095, -1] on failure (MAP_FAILED). */
#define IS_ERR_ADDR(a) ((__u64)(a) >= (__u64)-4095)

/* Mappings are made of whole pages: what a length really takes. */
static __always_inline __u64 page_up(__u64 len)
{
	return (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

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

/* This thread's call state, created on its first allocator call. */
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

/*
 * Entry-only probes (free, munmap) have no return probe to match: they
 * count unless they run inside another traced call, which accounts for
 * them.
 */
static __always_inline bool outermost(struct pt_regs *ctx)
{
	struct call_state *cs = thread_calls();

	return !cs || !nested(cs, PT_REGS_SP(ctx));
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

/* A new block: shared by every function that returns or stores one. */
static __always_inline void emit_alloc(struct call_state *cs, __u64 addr,
				       __u64 size)
{
	struct rec_alloc *r;

	if (!addr)
		return; /* failed allocation: nothing changed */
	r = new_thread_rec(REC_ALLOC, sizeof(*r));
	if (!r)
		return;
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
	enter(ctx, FN_PVALLOC, page_up(size), 0, 0);
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
	struct rec_realloc *r;

	if (!cs)
		return 0;
	/* Failure with size > 0 leaves the old block alone: no change. */
	if (!addr && cs->arg0)
		return 0;
	r = new_thread_rec(REC_REALLOC, sizeof(*r));
	if (!r)
		return 0;
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
	struct rec_free *r;

	if (bare || !addr)
		return;
	if (!outermost(ctx)) {
		__sync_fetch_and_add(&stats.nested, 1);
		return;
	}
	r = new_rec(REC_FREE, bpf_get_current_pid_tgid() >> 32, sizeof(*r));
	if (!r)
		return;
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

	enter(ctx, FN_MMAP, page_up(len), heap, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(mmap_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);
	struct rec_mmap *r;

	if (!cs || !cs->arg1 || IS_ERR_ADDR(addr))
		return 0;
	r = new_rec(REC_MMAP, bpf_get_current_pid_tgid() >> 32, sizeof(*r));
	if (!r)
		return 0;
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
	struct rec_munmap *r;

	if (bare || !outermost(ctx))
		return 0;
	r = new_rec(REC_MUNMAP, bpf_get_current_pid_tgid() >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->addr = addr;
	r->len = page_up(len);
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
	enter(ctx, FN_MREMAP, old_addr, page_up(old_len), page_up(new_len));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(mremap_return, __u64 addr)
{
	struct call_state *cs = leave(ctx);
	struct rec_mremap *r;

	if (!cs || IS_ERR_ADDR(addr))
		return 0;
	r = new_rec(REC_MREMAP, bpf_get_current_pid_tgid() >> 32, sizeof(*r));
	if (!r)
		return 0;
	r->old_addr = cs->arg0;
	r->old_len = cs->arg1;
	r->new_addr = addr;
	r->new_len = cs->arg2;
	r->site = cs->site;
	submit(r);
	return 0;
}

#endif
