/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Process lifecycle: fork, exec and exit of traced processes, and the OOM
 * killer's choice of one, from BTF tracepoints (no tracefs needed). Rare
 * and urgent: every record here wakes the agent.
 */
#ifndef MEMPROF_LIFECYCLE_BPF_H
#define MEMPROF_LIFECYCLE_BPF_H

#include "common.bpf.h"

const volatile bool watch_exec = false; /* report every exec (--comm) */

/* ---- process lifecycle -------------------------------------------------- */

/*
 * A fork, exec or exit record. Not new_rec(): a lost exec of a process we
 * only watch for (--comm) is counted apart, since no process lost it.
 */
static __always_inline void emit_proc(__u32 type, __u32 pid, __u32 child,
				      int code, __u64 image,
				      struct task_struct *t)
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
	r->image = image;
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

/* kn's parent directory under either name (NULL at the root). */
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
	struct rec_oom *r = new_rec(REC_OOM, tgid, sizeof(*r));

	if (!r)
		return;
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
	emit_proc(REC_FORK, ptgid, ctgid, 0, 0, child);
	return 0;
}

#define AT_RANDOM_TYPE 25 /* <elf.h>'s AT_RANDOM */
#define AUXV_WORDS 56 /* mm_struct's saved_auxv[] */

/*
 * The new image's identity: the 16 random bytes exec put on its stack
 * (AT_RANDOM), whose first 8 the in-process recorder also reads. Ordered
 * by them, the recorder's records follow the exec that made their image.
 */
static __always_inline __u64 image_id(struct task_struct *p)
{
	struct mm_struct *mm = p->mm;
	unsigned long type, value;
	__u64 id = 0;
	int i;

	if (!mm)
		return 0;
	for (i = 0; i + 1 < AUXV_WORDS; i += 2) {
		type = BPF_CORE_READ(mm, saved_auxv[i]);
		if (!type)
			return 0; /* AT_NULL: none */
		if (type != AT_RANDOM_TYPE)
			continue;
		value = BPF_CORE_READ(mm, saved_auxv[i + 1]);
		if (bpf_probe_read_user(&id, sizeof(id), (void *)value))
			return 0;
		return id;
	}
	return 0;
}

/*
 * exec keeps the task, so its allocator call state would outlive the image
 * it was taken in: an entry whose return never came (probes moved to the
 * new root's libc mid-call) left an sp that a new stack below it read as
 * "nested" forever. The new image starts with no call in flight.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	bpf_task_storage_delete(&calls, p);
	if (watch_exec || traced(tgid))
		emit_proc(REC_EXEC, tgid, 0, 0, image_id(p), p);
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
	emit_proc(REC_EXIT, tgid, 0, p->exit_code, 0, p);
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

#endif
