/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python stack of the allocating thread, walked in BPF at each outermost
 * allocator entry (BPF-only helpers, included by memprof.bpf.c).
 *
 * The thread's own PyThreadState comes from CPython's autoTSSkey through
 * glibc's thread-specific data (fsbase + tsd_base + 16 * key + 8), which
 * stays set while the thread has released the GIL. Frames are hashed into a
 * stack id; a stack's frames (REC_PYSTACK) and a code object's names
 * (REC_PYCODE) cross the ring buffer only the first time they are seen.
 */
#ifndef MEMPROF_PYSTACK_BPF_H
#define MEMPROF_PYSTACK_BPF_H

#define FRAME_OWNED_BY_CSTACK 3

/* glibc 2.36 x86-64: struct pthread.specific_1stblock (see docs). */
const volatile __u64 tsd_base = 0x310;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct py_cfg);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} known_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} known_codes SEC(".maps");

/* Scratch for one walk: too big for the 512-byte BPF stack. */
struct walk {
	__u8 hdr[0x70]; /* frame header (f_lasti is at 0x68 in 3.8) */
	__u8 head[0x90]; /* code object header */
	struct rec_pystack rec;
	__u64 frame;
	__u64 hash;
	__u32 pid;
	__u32 depth;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk);
} walks SEC(".maps");

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

/* The allocating thread's PyThreadState, or 0 (no Python state). */
static __always_inline __u64 current_tstate(const struct py_cfg *cfg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(t, thread.fsbase);
	__u32 key = 0;

	bpf_probe_read_user(&key, sizeof(key),
			    (void *)(cfg->runtime + cfg->tss_key));
	if (!fsbase || key >= 32)
		return 0;
	return read_u64(fsbase + tsd_base + 16 * key + 8);
}

static __always_inline __u64 first_frame(const struct py_cfg *cfg, __u64 ts)
{
	if (cfg->ts_frame != PY_FIELD_NONE)
		return read_u64(ts + cfg->ts_frame);
	return read_u64(read_u64(ts + cfg->ts_cframe) + cfg->cframe_current);
}

/* Send a code object's names the first time its identity is seen. */
static __always_inline void note_code(struct walk *w, const struct py_cfg *cfg,
				      __u64 code, __u64 id, __u64 file,
				      __u64 name, __s32 first)
{
	struct rec_pycode *r;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known_codes, &id))
		return;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop(traced(w->pid));
		return; /* not marked known: retried on the next sighting */
	}
	r->hdr.type = REC_PYCODE;
	r->hdr.pid = w->pid;
	r->code_id = id;
	r->code = code;
	r->firstlineno = first;
	/* Code-object strings are compact ASCII in practice. */
	if (bpf_probe_read_user_str(r->filename, sizeof(r->filename),
				    (void *)(file + cfg->ascii_data)) < 0)
		r->filename[0] = '\0';
	if (bpf_probe_read_user_str(r->name, sizeof(r->name),
				    (void *)(name + cfg->ascii_data)) < 0)
		r->name[0] = '\0';
	bpf_ringbuf_submit(r, 0);
	bpf_map_update_elem(&known_codes, &id, &one, BPF_ANY);
}

static __always_inline __s32 lasti_of(const struct py_cfg *cfg, __u64 code,
				      __u64 instr)
{
	__s64 d;

	if (!cfg->instr_is_ptr)
		return (__s32)instr;
	d = (__s64)(instr - (code + cfg->code_start)) >> 1; /* code units */
	return d < -1 || d > 0x10000000 ? -1 : (__s32)d;
}

/*
 * Something of the filename's content: notebook cells are freed after they
 * run and the next cell's code object, filename string and name can land
 * at the very same addresses. The str hash when cached, else the last 16
 * bytes (where ipykernel's per-cell hash is) and the length.
 */
static __always_inline __u64 str_identity(const struct py_cfg *cfg, __u64 str)
{
	__s64 head[2] = {}; /* length, hash */
	__u64 tail[2] = {};

	if (bpf_probe_read_user(head, sizeof(head), (void *)(str + 0x10)))
		return 0;
	if (head[1] != -1)
		return head[1];
	if (head[0] >= 16)
		bpf_probe_read_user(
			tail, sizeof(tail),
			(void *)(str + cfg->ascii_data + head[0] - 16));
	return mix(mix(head[0], tail[0]), tail[1]);
}

/* A field of a header copy in the scratch map, bounds-checked. */
static __always_inline __u64 field64(const __u8 *buf, __u32 size, __u16 off)
{
	if (off > size - 8)
		return 0;
	return *(const __u64 *)(buf + off);
}

static __always_inline __s32 field32(const __u8 *buf, __u32 size, __u16 off)
{
	if (off > size - 4)
		return 0;
	return *(const __s32 *)(buf + off);
}

/*
 * One frame: bpf_loop callback; returns 1 to stop. Map values cannot carry
 * pointers across the callback, so scratch and config are looked up here.
 */
static long walk_one(__u32 i, void *ctx)
{
	__u32 zero = 0, pid = *(__u32 *)ctx;
	struct walk *w = bpf_map_lookup_elem(&walks, &zero);
	const struct py_cfg *cfg = bpf_map_lookup_elem(&py_procs, &pid);
	__u64 code, instr, file, name, id, fr;
	__s32 first;
	__u16 own;
	__u32 d;

	if (!w || !cfg)
		return 1;
	fr = w->frame;
	d = w->depth;
	if (!fr || d >= PY_MAX_DEPTH)
		return 1;
	if (bpf_probe_read_user(w->hdr, sizeof(w->hdr), (void *)fr))
		return 1;
	w->frame = field64(w->hdr, sizeof(w->hdr), cfg->fr_back);
	code = field64(w->hdr, sizeof(w->hdr), cfg->fr_code);
	instr = cfg->instr_is_ptr
			? field64(w->hdr, sizeof(w->hdr), cfg->fr_instr)
			: (__u64)(__s64)field32(w->hdr, sizeof(w->hdr),
						cfg->fr_instr);
	own = cfg->fr_owner;
	if (own < sizeof(w->hdr) && w->hdr[own] == FRAME_OWNED_BY_CSTACK)
		return 0; /* C-stack shim frame (3.12+): keep walking */
	if (!code ||
	    bpf_probe_read_user(w->head, sizeof(w->head), (void *)code))
		return 0;
	file = field64(w->head, sizeof(w->head), cfg->co_filename);
	name = field64(w->head, sizeof(w->head), cfg->co_name);
	first = field32(w->head, sizeof(w->head), cfg->co_firstlineno);
	id = mix(mix(mix(mix(cfg->gen ^ w->pid, code), file), name), first);
	id = mix(id, str_identity(cfg, file));
	note_code(w, cfg, code, id, file, name, first);
	w->rec.frames[d].code_id = id;
	w->rec.frames[d].lasti = lasti_of(cfg, code, instr);
	w->hash = mix(mix(w->hash, id), instr);
	w->depth = d + 1;
	return 0;
}

/* Stack id of the current thread's Python stack (0: none), sent once. */
static __always_inline __u64 py_stack(__u32 pid)
{
	const struct py_cfg *cfg = bpf_map_lookup_elem(&py_procs, &pid);
	struct rec_pystack *r;
	struct walk *w;
	__u32 zero = 0;
	__u64 ts;
	__u8 one = 1;

	if (!cfg)
		return 0;
	w = bpf_map_lookup_elem(&walks, &zero);
	ts = current_tstate(cfg);
	if (!w)
		return 0;
	if (!ts) /* BLAS workers, ZMQ threads: no Python state at all */
		return PY_STACK_NATIVE_THREAD;
	w->pid = pid;
	w->depth = 0;
	w->hash = cfg->gen ^ pid;
	w->frame = first_frame(cfg, ts);
	bpf_loop(cfg->depth, walk_one, &pid, 0);
	if (!w->depth)
		return PY_STACK_NATIVE_THREAD;
	w->hash |= 1; /* never 0 */
	if (bpf_map_lookup_elem(&known_stacks, &w->hash))
		return w->hash;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop(traced(pid));
		return w->hash; /* its record is lost: the agent says so */
	}
	bpf_probe_read_kernel(r->frames, sizeof(r->frames), w->rec.frames);
	r->hdr.type = REC_PYSTACK;
	r->hdr.pid = pid;
	r->stack_id = w->hash;
	r->depth = w->depth;
	r->truncated = w->frame != 0 && w->depth >= cfg->depth;
	bpf_ringbuf_submit(r, 0);
	bpf_map_update_elem(&known_stacks, &w->hash, &one, BPF_ANY);
	return w->hash;
}

#endif
