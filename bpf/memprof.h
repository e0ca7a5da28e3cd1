/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records shared by the BPF probes (bpf/) and the agent (user/).
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
	REC_PYSTACK = 10, /* first sighting of a Python stack: its frames */
	REC_PYCODE = 11, /* first sighting of a code object: its names */
	REC_GC = 12, /* python:gc__start / gc__done (USDT) */
	REC_IMPORT = 13, /* python:import__find__load__start / __done */
	REC_CELL = 14, /* memprof:cell__start / cell__end (python/ package) */
	REC_CODE_FREE = 15, /* a code object seen in a stack was deallocated */
	REC_DSO = 16, /* ld.so changed the mapped libraries (dlopen/dlclose) */
	REC_OOM = 17, /* the kernel's OOM killer chose a traced process */
	REC_IMAGE = 18, /* the recorder began in a new image (after an exec) */
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
	/* CPython's object allocator (--pymalloc): _PyObject_Malloc & co. */
	FN_PYMALLOC,
	FN_PYCALLOC,
	FN_PYREALLOC,
	FN_PYFREE,
	FN_MAX,
};

struct rec_hdr {
	__u32 type; /* enum rec_type */
	__u32 pid; /* tgid of the process */
};

/* 48 bytes: the common case. */
struct rec_alloc {
	struct rec_hdr hdr;
	__u32 tid;
	__u32 fn; /* enum alloc_fn */
	__u64 addr;
	__u64 size;
	__u64 site; /* return address in the caller (native site) */
	__u64 stack; /* Python stack id (REC_PYSTACK), 0 = none */
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
	__u64 stack;
};

struct rec_mmap {
	struct rec_hdr hdr;
	__u64 addr;
	__u64 len;
	__u64 site;
	__u64 stack;
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
	__u64 image; /* REC_EXEC: the new image's AT_RANDOM bytes, 0 unknown */
	char comm[MEMPROF_COMM_LEN];
};

/*
 * REC_OOM: the OOM killer chose pid. Its memory cgroup's path, named by the
 * kernel (a /proc read races with the victim's exit), as the directory
 * names from the cgroup up to below the hierarchy's root: "/a/b" is
 * names[1] = "a", names[0] = "b", depth 2; depth 0 is the root.
 */
#define MEMCG_DEPTH 8
#define MEMCG_NAME_LEN 128
#define MEMCG_UNKNOWN 0xff /* depth: deeper, a name too long, no memcg */

enum oom_from {
	OOM_MARKED = 0, /* oom:mark_victim, as it was chosen */
	OOM_AT_EXIT = 1, /* its exit, marked an OOM victim (signal->oom_mm) */
};

struct rec_oom {
	struct rec_hdr hdr;
	__u32 depth; /* names filled, or MEMCG_UNKNOWN */
	__u32 from; /* enum oom_from */
	char names[MEMCG_DEPTH][MEMCG_NAME_LEN]; /* innermost first */
};

/* ---- Python stacks ------------------------------------------------------ */

#define PY_MAX_DEPTH 128 /* --py-depth ceiling; default 64 */
#define PY_FILE_LEN 192
#define PY_NAME_LEN 96
#define PY_FIELD_NONE 0xffff
/*
 * Bytes of a frame header and of a code object header the walker copies
 * at once: every offset it reads there must fit (pyruntime.c checks
 * offsets read from the process against them).
 */
#define PY_FRAME_HDR 0x70 /* f_lasti is at 0x68 in 3.8 */
#define PY_CODE_HDR 0x90
/* Frame owners from here on are not Python frames (3.12+: C-stack shims). */
#define PY_OWNER_NOT_PYTHON 3
/* Stack id of a Python process's thread with no Python frames. */
#define PY_STACK_NATIVE_THREAD 2

/*
 * One Python frame: the code object's identity (a hash of its address and
 * of its name/filename pointers and first line, so a freed code object
 * whose address is reused gets a new identity) and the instruction index.
 */
struct py_frame {
	__u64 code_id;
	__s32 lasti; /* code units (3.10+) or bytes (3.8/3.9); -1 unknown */
	__u32 unused;
};

/* Innermost frame first, as walked. */
struct rec_pystack {
	struct rec_hdr hdr;
	__u64 stack_id;
	__u32 depth;
	__u32 truncated; /* the walk stopped at PY_MAX_DEPTH */
	__u64 ts_ns; /* CLOCK_MONOTONIC: first seen (an unmarked cell's start) */
	struct py_frame frames[PY_MAX_DEPTH];
};

/*
 * The line table (co_linetable, or co_lnotab before 3.10) is copied when
 * it fits: a process killed right after a code object's first sighting
 * (an OOM kill at a first big allocation) is gone before the agent could
 * read it. 1 KiB holds 99% of them (pandas and numpy, 3.11).
 */
#define PY_TABLE_LEN 1024
#define PY_TABLE_NONE 0xffffffffu /* table_len: not copied, read it */

struct rec_pycode {
	struct rec_hdr hdr;
	__u64 code_id;
	__u64 code; /* address, to read the line table while it lives */
	__s32 firstlineno;
	__u32 table_len; /* bytes of table, or PY_TABLE_NONE */
	char filename[PY_FILE_LEN];
	char name[PY_NAME_LEN]; /* qualname where the version has it */
	__u8 table[PY_TABLE_LEN];
};

/*
 * Per-process interpreter layout (user/pyruntime.c), value of py_procs.
 * PY_FIELD_NONE marks a field the version lacks.
 */
struct py_cfg {
	__u64 runtime; /* address of _PyRuntime */
	__u64 gen; /* changes on (re)configuration: old ids never match */
	__u32 tss_key; /* offset of autoTSSkey._key in _PyRuntime */
	__s32 tls_off; /* 3.15: bound PyThreadState at fsbase + tls_off */
	__u16 ts_frame, ts_cframe, cframe_current;
	__u16 fr_back, fr_code, fr_instr, fr_owner;
	__u16 co_filename, co_name, co_firstlineno, code_start;
	__u16 ascii_data;
	__u16 str_length, str_hash; /* PyASCIIObject: a filename's identity */
	__u16 bytes_size, bytes_data; /* PyBytesObject: the line table */
	__u16 instr_is_ptr; /* 3.11+: instruction pointer, not an index */
	__u16 depth; /* frames to walk, <= PY_MAX_DEPTH */
	__u16 sig_cache; /* code_dealloc is probed: chains may be cached */
	__u16 win; /* frames live in a contiguous data stack (3.11+) */
	__u16 co_linetable; /* the line table's bytes object */
	__u16 exec_mask; /* 3.14+: tag bits of f_executable (_PyStackRef) */
	__u16 ts_datastack; /* 3.11+: PyThreadState -> datastack_chunk */
	__u64 code_gen; /* bumped by BPF at every code object dealloc */
};

/*
 * Fold v into hash h: stack ids, code ids and chain signatures, the same
 * in BPF (bpf/pystack.bpf.h) and in the recorder (user/recorder/pywalk.c).
 */
static inline __u64 py_mix(__u64 h, __u64 v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/*
 * The frame's instruction as the agent's line tables want it: f_lasti as
 * is (3.8-3.10), or from 3.11 the instruction pointer turned into code
 * units from the start of the bytecode; -1 when it is not inside it.
 */
static inline __s32 py_lasti(const struct py_cfg *cfg, __u64 code, __u64 instr)
{
	__s64 d;

	if (!cfg->instr_is_ptr)
		return (__s32)instr;
	d = (__s64)(instr - (code + cfg->code_start)) >> 1; /* code units */
	return d < -1 || d > 0x10000000 ? -1 : (__s32)d;
}

/*
 * Markers (gc, import, cells) come through BPF even for a process that
 * records its allocations in-process (user/recorder/): cut is how far its
 * ring was reserved when the marker fired, so the agent handles what
 * the process recorded before the marker first. 0: no recorder.
 */

/* A garbage collection begins (done == 0) or ends on a thread. */
struct rec_gc {
	struct rec_hdr hdr;
	__u32 tid;
	__u32 done;
	__s64 value; /* start: generation; done: objects collected */
	__u64 ts_ns;
	__u64 cut;
};

#define PY_MODULE_LEN 64

/* An import begins (done == 0) or ends on a thread. */
struct rec_import {
	struct rec_hdr hdr;
	__u32 tid;
	__u32 done;
	__u64 cut;
	char module[PY_MODULE_LEN];
};

#define CELL_HEAD_LEN 104

/* A notebook cell starts (done == 0) or ends: the python/ extension's USDT. */
struct rec_cell {
	struct rec_hdr hdr;
	__u32 tid;
	__u32 done;
	__s64 execution_count;
	__s32 success; /* cell__end only */
	__u32 unused;
	__u64 ts_ns;
	__u64 cut;
	char file[PY_FILE_LEN]; /* the cell code's co_filename */
	char head[CELL_HEAD_LEN]; /* first line of the cell's source */
};

/* code_dealloc of a code object the walker had identified. */
struct rec_code_free {
	struct rec_hdr hdr;
	__u64 code; /* its address */
	__u64 ts_ns;
};

/*
 * REC_IMAGE, the recorder's first record in an image: what the process
 * wrote before it is its old image's, and the agent takes what follows
 * only once it has handled the REC_EXEC whose image this is.
 */
struct rec_image {
	struct rec_hdr hdr;
	__u64 image; /* its AT_RANDOM bytes, as REC_EXEC's image */
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
	__u64 py_walks; /* Python stacks walked */
	__u64 py_identified; /* walks whose chain was not in the cache */
	__u64 py_new_stacks; /* stacks sent to the agent */
};

#endif /* MEMPROF_H */
