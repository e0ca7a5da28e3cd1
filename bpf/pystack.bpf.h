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

/* What a frame's code object needs if its names must be sent. */
struct code_ref {
	__u64 code, file, name, id;
	__s32 first;
	__u32 unused;
};

/*
 * Scratch for one walk: too big for the 512-byte BPF stack. The config is
 * copied in once per walk so the per-frame callback needs no hash lookup.
 */
struct walk {
	__u8 hdr[0x70]; /* frame header (f_lasti is at 0x68 in 3.8) */
	__u8 head[0x90]; /* code object header */
	struct py_cfg cfg;
	struct rec_pystack rec;
	struct code_ref refs[PY_MAX_DEPTH];
	__u64 frame;
	__u64 hash;
	__u32 pid;
	__u32 depth;
	__u32 lost; /* a code record could not be sent */
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
static __always_inline void note_code(struct walk *w, const struct code_ref *c)
{
	struct rec_pycode *r;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known_codes, &c->id))
		return;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_drop(traced(w->pid));
		w->lost =
			1; /* not marked known: retried on the next sighting */
		return;
	}
	r->hdr.type = REC_PYCODE;
	r->hdr.pid = w->pid;
	r->code_id = c->id;
	r->code = c->code;
	r->firstlineno = c->first;
	/* Code-object strings are compact ASCII in practice. */
	if (bpf_probe_read_user_str(r->filename, sizeof(r->filename),
				    (void *)(c->file + w->cfg.ascii_data)) < 0)
		r->filename[0] = '\0';
	if (bpf_probe_read_user_str(r->name, sizeof(r->name),
				    (void *)(c->name + w->cfg.ascii_data)) < 0)
		r->name[0] = '\0';
	bpf_ringbuf_submit(r, 0);
	bpf_map_update_elem(&known_codes, &c->id, &one, BPF_ANY);
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

/* The per-CPU scratch; always there (array map), checked for the verifier. */
static __always_inline struct walk *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&walks, &zero);
}

/*
 * One frame: bpf_loop callback; returns 1 to stop. Map values cannot carry
 * pointers across the callback, so the scratch is looked up again here (an
 * array lookup the verifier inlines). Two reads per frame: the frame and
 * its code object, plus the filename string's identity.
 */
static long walk_one(__u32 i, void *ctx)
{
	struct walk *w = scratch();
	const struct py_cfg *cfg;
	struct code_ref *c;
	__u64 instr, fr;
	__u16 own;
	__u32 d;

	if (!w)
		return 1;
	cfg = &w->cfg;
	fr = w->frame;
	d = w->depth;
	if (!fr || d >= PY_MAX_DEPTH)
		return 1;
	if (bpf_probe_read_user(w->hdr, sizeof(w->hdr), (void *)fr))
		return 1;
	c = &w->refs[d];
	w->frame = field64(w->hdr, sizeof(w->hdr), cfg->fr_back);
	c->code = field64(w->hdr, sizeof(w->hdr), cfg->fr_code);
	instr = cfg->instr_is_ptr
			? field64(w->hdr, sizeof(w->hdr), cfg->fr_instr)
			: (__u64)(__s64)field32(w->hdr, sizeof(w->hdr),
						cfg->fr_instr);
	own = cfg->fr_owner;
	if (own < sizeof(w->hdr) && w->hdr[own] == FRAME_OWNED_BY_CSTACK)
		return 0; /* C-stack shim frame (3.12+): keep walking */
	if (!c->code ||
	    bpf_probe_read_user(w->head, sizeof(w->head), (void *)c->code))
		return 0;
	c->file = field64(w->head, sizeof(w->head), cfg->co_filename);
	c->name = field64(w->head, sizeof(w->head), cfg->co_name);
	c->first = field32(w->head, sizeof(w->head), cfg->co_firstlineno);
	c->id = mix(mix(mix(mix(cfg->gen ^ w->pid, c->code), c->file), c->name),
		    c->first);
	c->id = mix(c->id, str_identity(cfg, c->file));
	w->rec.frames[d].code_id = c->id;
	w->rec.frames[d].lasti = lasti_of(cfg, c->code, instr);
	w->hash = mix(mix(w->hash, c->id), instr);
	w->depth = d + 1;
	return 0;
}

/* bpf_loop callback: send frame i's code names unless already sent. */
static long note_one(__u32 i, void *ctx)
{
	struct walk *w = scratch();

	if (!w || i >= w->depth)
		return 1;
	note_code(w, &w->refs[i & (PY_MAX_DEPTH - 1)]); /* mask: verifier */
	return 0;
}

/* Send a new stack's frames; false when the record was lost. */
static __always_inline bool send_stack(struct walk *w)
{
	struct rec_pystack *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count_drop(traced(w->pid));
		return false; /* the agent counts the stack as unknown */
	}
	bpf_probe_read_kernel(r->frames, sizeof(r->frames), w->rec.frames);
	r->hdr.type = REC_PYSTACK;
	r->hdr.pid = w->pid;
	r->stack_id = w->hash;
	r->depth = w->depth;
	r->truncated = w->frame != 0 && w->depth >= w->cfg.depth;
	bpf_ringbuf_submit(r, 0);
	return true;
}

/*
 * Stack id of the current thread's Python stack (0: none). A known stack
 * costs the walk and one lookup; only a new one looks at its code objects
 * and crosses the ring buffer (codes first, so names precede their use).
 */
static __always_inline __u64 py_stack(__u32 pid)
{
	const struct py_cfg *cfg = bpf_map_lookup_elem(&py_procs, &pid);
	struct walk *w = scratch();
	__u64 ts;
	__u8 one = 1;

	if (!cfg || !w)
		return 0;
	ts = current_tstate(cfg);
	if (!ts) /* BLAS workers, ZMQ threads: no Python state at all */
		return PY_STACK_NATIVE_THREAD;
	w->cfg = *cfg;
	w->pid = pid;
	w->depth = 0;
	w->lost = 0;
	w->hash = cfg->gen ^ pid;
	w->frame = first_frame(cfg, ts);
	bpf_loop(cfg->depth, walk_one, NULL, 0);
	if (!w->depth)
		return PY_STACK_NATIVE_THREAD;
	w->hash |= 1; /* never 0 */
	if (bpf_map_lookup_elem(&known_stacks, &w->hash))
		return w->hash;
	bpf_loop(w->depth, note_one, NULL, 0);
	if (send_stack(w) && !w->lost)
		bpf_map_update_elem(&known_stacks, &w->hash, &one, BPF_ANY);
	return w->hash;
}

#endif
