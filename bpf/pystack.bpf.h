/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python stack of the allocating thread, walked in BPF at each outermost
 * allocator entry (BPF-only: its maps and py_stack(), which the allocator
 * probes call).
 *
 * The thread's own PyThreadState comes from CPython's autoTSSkey through
 * glibc's thread-specific data (fsbase + tsd_base + 16 * key + 8), which
 * stays set while the thread has released the GIL. Frames are hashed into a
 * stack id; a stack's frames (REC_PYSTACK) and a code object's names
 * (REC_PYCODE) cross the ring buffer only the first time they are seen.
 */
#ifndef MEMPROF_PYSTACK_BPF_H
#define MEMPROF_PYSTACK_BPF_H

#include "common.bpf.h"
#include "memprof.h"

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

/* A frame as first seen: its code object and instruction. */
struct raw_frame {
	__u64 code, instr;
};

#define FRAME_HDR PY_FRAME_HDR
#define WIN_SIZE 4096 /* data-stack bytes read at once below the top frame */

/*
 * Scratch for one walk: too big for the 512-byte BPF stack. The config is
 * copied in once per walk so the per-frame callbacks need no hash lookup.
 */
struct walk {
	__u8 hdr[FRAME_HDR];
	__u8 head[PY_CODE_HDR]; /* code object header */
	struct py_cfg cfg;
	struct rec_pystack rec;
	struct code_ref refs[PY_MAX_DEPTH];
	struct raw_frame raw[PY_MAX_DEPTH];
	__u64 frame;
	__u64 hash; /* stack id being built */
	__u64 sig; /* code pointers and instructions, the cache key */
	__u64 win_lo, win_hi; /* process addresses held in win */
	__u64 chunk; /* the thread's current data-stack chunk (3.11+), or 0 */
	__u32 pid;
	__u32 depth; /* raw frames */
	__u32 out; /* frames with a readable code object */
	__u32 lost; /* a code record could not be sent */
	__u32 refills; /* windows read after the first */
	__u8 win[WIN_SIZE + FRAME_HDR];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk);
} walks SEC(".maps");

/*
 * Chain signature -> stack id. A signature is the frames' code pointers
 * and instructions plus the process's code generation, which the
 * code_dealloc probe bumps: a code object's address can only come back as
 * another code object after a dealloc, which retires every signature.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} stack_sigs SEC(".maps");

/* A word of the traced process, 0 when unreadable: callers take 0 as none. */
static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

/*
 * The allocating thread's PyThreadState, or 0 (no Python state): the one
 * bound to the thread, which stays set while it has released the GIL.
 * 3.15 keeps it in a TLS variable below the thread pointer; before, in
 * the pthread key autoTSSkey.
 */
static __always_inline __u64 current_tstate(const struct py_cfg *cfg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(t, thread.fsbase);
	__u64 key = 0; /* a u32 key, held wide: 16 * key needs no truncation */

	if (!fsbase)
		return 0;
	if (cfg->tls_off)
		return read_u64(fsbase + (__s64)cfg->tls_off);
	bpf_probe_read_user(&key, sizeof(__u32),
			    (void *)(cfg->runtime + cfg->tss_key));
	if (key >= 32)
		return 0;
	return read_u64(fsbase + tsd_base + 16 * key + 8);
}

/* The innermost frame: in the thread state, or (3.11/3.12) its cframe. */
static __always_inline __u64 first_frame(const struct py_cfg *cfg, __u64 ts)
{
	if (cfg->ts_frame != PY_FIELD_NONE)
		return read_u64(ts + cfg->ts_frame);
	return read_u64(read_u64(ts + cfg->ts_cframe) + cfg->cframe_current);
}

/* The code object's line table into r, when it fits (else the agent reads). */
static __always_inline void copy_table(const struct py_cfg *cfg, __u64 code,
				       struct rec_pycode *r)
{
	__u64 obj, size;

	r->table_len = PY_TABLE_NONE;
	if (cfg->co_linetable == PY_FIELD_NONE)
		return;
	obj = read_u64(code + cfg->co_linetable);
	size = obj ? read_u64(obj + cfg->bytes_size) : PY_TABLE_LEN + 1;
	if (size > PY_TABLE_LEN ||
	    bpf_probe_read_user(r->table, size,
				(void *)(obj + cfg->bytes_data)))
		return;
	r->table_len = size;
}

/* Send a code object's names the first time its identity is seen. */
static __always_inline void note_code(struct walk *w, const struct code_ref *c)
{
	struct rec_pycode *r;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known_codes, &c->id))
		return;
	r = new_rec(REC_PYCODE, w->pid, sizeof(*r));
	if (!r) {
		w->lost =
			1; /* not marked known: retried on the next sighting */
		return;
	}
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
	copy_table(&w->cfg, c->code, r);
	/*
	 * A table too long to copy is read by the agent from the process:
	 * wake it, or one killed within a poll (100 ms) of this first
	 * sighting (OOM) is gone by then. Once per code object.
	 */
	bpf_ringbuf_submit(
		r, r->table_len == PY_TABLE_NONE ? BPF_RB_FORCE_WAKEUP : 0);
	bpf_map_update_elem(&known_codes, &c->id, &one, BPF_ANY);
}

/*
 * Something of the filename's content: notebook cells are freed after they
 * run and the next cell's code object, filename string and name can land
 * at the very same addresses. The str hash when cached, else the last 16
 * bytes (where ipykernel's per-cell hash is) and the length.
 */
static __always_inline __u64 str_identity(const struct py_cfg *cfg, __u64 str)
{
	__s64 hash = read_u64(str + cfg->str_hash), len = 0;
	__u64 tail[2] = {};

	if (hash != -1)
		return hash; /* 0 when unreadable */
	if (bpf_probe_read_user(&len, sizeof(len),
				(void *)(str + cfg->str_length)))
		return 0;
	if (len >= 16)
		bpf_probe_read_user(tail, sizeof(tail),
				    (void *)(str + cfg->ascii_data + len - 16));
	return py_mix(py_mix(len, tail[0]), tail[1]);
}

/* A field of a header copy in the scratch map, bounds-checked. */
static __always_inline __u64 field64(const __u8 *buf, __u32 size, __u16 off)
{
	if (off > size - 8)
		return 0;
	return *(const __u64 *)(buf + off);
}

/* The same for a 32-bit field (co_firstlineno, 3.8-3.10 f_lasti). */
static __always_inline __s32 field32(const __u8 *buf, __u32 size, __u16 off)
{
	if (off > size - 4)
		return 0;
	return *(const __s32 *)(buf + off);
}

/*
 * When each code object was first identified, keyed by its address; the
 * code_dealloc probe deletes the entry. A code object's id includes its
 * birth, so the next object at a freed one's address (the next notebook
 * cell, or a re-run of the same source) is a different code, and a
 * different cell run, even with identical names.
 */
struct code_key {
	__u32 pid;
	__u32 unused;
	__u64 code;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct code_key);
	__type(value, __u64);
} code_births SEC(".maps");

/* Birth of a live code object (0 when code_dealloc is not probed). */
static __always_inline __u64 code_birth(struct walk *w, __u64 code)
{
	struct code_key key = { .pid = w->pid, .code = code };
	__u64 *b, now;

	if (!w->cfg.sig_cache)
		return 0;
	b = bpf_map_lookup_elem(&code_births, &key);
	if (b)
		return *b;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&code_births, &key, &now, BPF_NOEXIST);
	b = bpf_map_lookup_elem(&code_births, &key);
	return b ? *b : now;
}

/* The per-CPU scratch; always there (array map), checked for the verifier. */
static __always_inline struct walk *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&walks, &zero);
}

/*
 * 3.11+ frames sit contiguously in the thread's data stack, callers below
 * the top frame: one read of the WIN_SIZE bytes under the top frame's
 * header serves most of the walk. Not below the start of the current
 * chunk: the pages under it may never have been touched (3.14's chunk sits
 * inside a bigger mapping), and a read that faults there costs more than
 * the walk. If the read still fails, fall back to the top frame's page.
 */
static __always_inline void read_window(struct walk *w, __u64 top)
{
	__u64 end = top + FRAME_HDR, lo = end - WIN_SIZE, n;

	w->win_lo = w->win_hi = 0;
	if (!w->cfg.win || top < WIN_SIZE)
		return;
	if (w->chunk > lo && w->chunk < top)
		lo = w->chunk;
	n = end - lo;
	if (n <= WIN_SIZE && !bpf_probe_read_user(w->win, n, (void *)lo)) {
		w->win_lo = lo, w->win_hi = end;
		return;
	}
	lo = top & ~4095ULL;
	n = end - lo;
	if (n > WIN_SIZE)
		return;
	if (!bpf_probe_read_user(w->win, n, (void *)lo))
		w->win_lo = lo, w->win_hi = end;
}

#define WIN_REFILLS 3 /* further windows per walk, down the data stack */
#define WIN_REACH (64 << 10) /* "same data stack": this close below */

/*
 * Frame header at fr: in the window, else read into w->hdr; NULL when
 * unreadable. A frame just below the window (deep stacks of big frames:
 * pandas) is more data stack: the window moves down to end at it, instead
 * of one read per frame.
 */
static __always_inline const __u8 *frame_header(struct walk *w, __u64 fr)
{
	__u64 off;

	if (w->win_hi && fr < w->win_lo && w->win_lo - fr < WIN_REACH &&
	    w->refills < WIN_REFILLS) {
		w->refills++;
		read_window(w, fr);
	}
	off = fr - w->win_lo;
	if (fr >= w->win_lo && fr + FRAME_HDR <= w->win_hi &&
	    off <= WIN_SIZE - FRAME_HDR) {
		off &= WIN_SIZE - 1; /* for the verifier: already < WIN_SIZE */
		return &w->win[off];
	}
	return bpf_probe_read_user(w->hdr, FRAME_HDR, (void *)fr) ? NULL
								  : w->hdr;
}

/*
 * Pass 1, one frame (bpf_loop callback; 1 stops): the chain's code
 * pointers and instructions, from frame headers only. Map values cannot
 * carry pointers across the callback, so the scratch is looked up again
 * here (an array lookup the verifier inlines).
 */
static long raw_one(__u32 i, void *ctx)
{
	struct walk *w = scratch();
	const struct py_cfg *cfg;
	__u64 code, instr, fr;
	const __u8 *h;
	__u16 own;
	__u32 d;

	if (!w)
		return 1;
	cfg = &w->cfg;
	fr = w->frame;
	d = w->depth;
	if (!fr || d >= PY_MAX_DEPTH || !(h = frame_header(w, fr)))
		return 1;
	w->frame = field64(h, FRAME_HDR, cfg->fr_back);
	code = field64(h, FRAME_HDR, cfg->fr_code) & ~(__u64)cfg->exec_mask;
	instr = cfg->instr_is_ptr
			? field64(h, FRAME_HDR, cfg->fr_instr)
			: (__u64)(__s64)field32(h, FRAME_HDR, cfg->fr_instr);
	own = cfg->fr_owner;
	if (own < FRAME_HDR && h[own] >= PY_OWNER_NOT_PYTHON)
		return 0; /* C-stack or interpreter shim (3.12+): keep walking */
	if (!code)
		return 0;
	w->raw[d].code = code;
	w->raw[d].instr = instr;
	w->sig = py_mix(py_mix(w->sig, code), instr);
	w->depth = d + 1;
	return 0;
}

/*
 * Pass 2, one frame: what its code object is (address, names, first line,
 * filename content), only for chains not seen under this code generation.
 */
static long id_one(__u32 i, void *ctx)
{
	struct walk *w = scratch();
	const struct py_cfg *cfg;
	struct raw_frame *f;
	struct code_ref *c;
	__u32 k;

	if (!w || i >= w->depth)
		return 1;
	cfg = &w->cfg;
	f = &w->raw[i & (PY_MAX_DEPTH - 1)];
	k = w->out;
	if (k >= PY_MAX_DEPTH)
		return 1;
	c = &w->refs[k];
	c->code = f->code;
	if (bpf_probe_read_user(w->head, sizeof(w->head), (void *)c->code))
		return 0; /* unreadable code object: frame left out */
	c->file = field64(w->head, sizeof(w->head), cfg->co_filename);
	c->name = field64(w->head, sizeof(w->head), cfg->co_name);
	c->first = field32(w->head, sizeof(w->head), cfg->co_firstlineno);
	c->id = py_mix(
		py_mix(py_mix(py_mix(cfg->gen ^ w->pid, c->code), c->file),
		       c->name),
		c->first);
	c->id = py_mix(c->id, str_identity(cfg, c->file));
	c->id = py_mix(c->id, code_birth(w, c->code));
	w->rec.frames[k].code_id = c->id;
	w->rec.frames[k].lasti = py_lasti(cfg, c->code, f->instr);
	w->hash = py_mix(py_mix(w->hash, c->id), f->instr);
	w->out = k + 1;
	return 0;
}

/* bpf_loop callback: send frame i's code names unless already sent. */
static long note_one(__u32 i, void *ctx)
{
	struct walk *w = scratch();

	if (!w || i >= w->out)
		return 1;
	note_code(w, &w->refs[i & (PY_MAX_DEPTH - 1)]); /* mask: verifier */
	return 0;
}

/* Send a new stack's frames; false when the record was lost. */
static __always_inline bool send_stack(struct walk *w)
{
	/*
	 * Not new_rec(): w->pid would be read before the reserve and kept on
	 * the stack, two instructions more in every allocator entry program.
	 */
	struct rec_pystack *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count_drop(traced(w->pid));
		return false; /* the agent counts the stack as unknown */
	}
	bpf_probe_read_kernel(r->frames, sizeof(r->frames), w->rec.frames);
	r->hdr.type = REC_PYSTACK;
	r->hdr.pid = w->pid;
	r->stack_id = w->hash;
	r->depth = w->out;
	r->truncated = w->frame != 0 && w->depth >= w->cfg.depth;
	r->ts_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(r, 0);
	return true;
}

/*
 * Stack id of a chain not in the signature cache: identify its code
 * objects, and the first time the stack is seen send its code names
 * (first, so names precede their use) and frames.
 */
static __always_inline __u64 identify(struct walk *w)
{
	__u8 one = 1;

	w->out = 0;
	w->lost = 0;
	w->hash = w->cfg.gen ^ w->pid;
	bpf_loop(w->depth, id_one, NULL, 0);
	if (!w->out)
		return PY_STACK_NATIVE_THREAD;
	w->hash |= 1; /* never 0 */
	if (bpf_map_lookup_elem(&known_stacks, &w->hash))
		return w->hash;
	bpf_loop(w->out, note_one, NULL, 0);
	__sync_fetch_and_add(&stats.py_new_stacks, 1);
	if (!send_stack(w))
		w->lost = 1;
	if (w->lost)
		return w->hash; /* the agent lacks a record: not marked */
	bpf_map_update_elem(&known_stacks, &w->hash, &one, BPF_ANY);
	return w->hash;
}

/*
 * Stack id of the current thread's Python stack (0: none). Pass 1 reads
 * frame headers only (3.11+: mostly one read of the data stack); a chain
 * already seen under the current code generation costs one lookup more.
 */
static __always_inline __u64 py_stack(__u32 pid)
{
	const struct py_cfg *cfg = bpf_map_lookup_elem(&py_procs, &pid);
	struct walk *w = scratch();
	__u64 ts, id, *hit;

	if (!cfg || !w)
		return 0;
	ts = current_tstate(cfg);
	if (!ts) /* BLAS workers, ZMQ threads: no Python state at all */
		return PY_STACK_NATIVE_THREAD;
	w->cfg = *cfg;
	w->pid = pid;
	w->depth = 0;
	w->frame = first_frame(cfg, ts);
	w->chunk = cfg->ts_datastack != PY_FIELD_NONE
			   ? read_u64(ts + cfg->ts_datastack)
			   : 0;
	w->sig = py_mix(cfg->gen ^ pid, w->cfg.code_gen);
	w->refills = 0;
	read_window(w, w->frame);
	bpf_loop(cfg->depth, raw_one, NULL, 0);
	if (!w->depth)
		return PY_STACK_NATIVE_THREAD;
	__sync_fetch_and_add(&stats.py_walks, 1);
	w->sig = py_mix(w->sig, w->frame != 0); /* truncated or not */
	if (w->cfg.sig_cache) {
		hit = bpf_map_lookup_elem(&stack_sigs, &w->sig);
		if (hit)
			return *hit;
	}
	__sync_fetch_and_add(&stats.py_identified, 1);
	id = identify(w);
	/* Cache only ids the agent knows, under an unchanged generation. */
	if (w->cfg.sig_cache && !w->lost && id != PY_STACK_NATIVE_THREAD &&
	    *(volatile __u64 *)&cfg->code_gen == w->cfg.code_gen)
		bpf_map_update_elem(&stack_sigs, &w->sig, &id, BPF_ANY);
	return id;
}

/*
 * ---- code objects -------------------------------------------------------
 * code_dealloc (PyCode_Type.tp_dealloc): a code object's address may now
 * come back as another code object, so cached frame chains of this process
 * stop matching (stack_sigs). Rare: notebook cells, exec'd code.
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
	r = new_rec(REC_CODE_FREE, pid, sizeof(*r));
	if (!r)
		return 0;
	r->code = code;
	r->ts_ns = bpf_ktime_get_ns();
	submit(r);
	return 0;
}

#endif
