/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Is this process a CPython, which version, where is its _PyRuntime, and
 * which struct layout does it use? The layouts for 3.8-3.12 (x86-64,
 * release builds) come from docs/cpython-offsets.md, where each number
 * says how it was verified. 3.13+ publish _Py_DebugOffsets at the start of
 * _PyRuntime: the agent reads the walker's offsets from it (a patch release
 * that moves a field is followed, one whose struct does not parse is
 * refused), and the table supplies only what it does not carry
 * (docs/design/python314.md).
 */
#ifndef MEMPROF_PYRUNTIME_H
#define MEMPROF_PYRUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Byte offsets the frame walker needs (0xffff: field absent). */
struct py_layout {
	uint8_t major, minor;
	uint32_t runtime_size; /* st_size of _PyRuntime: a cheap layout check */
	uint32_t tss_key; /* _PyRuntime -> autoTSSkey._key (u32) */
	uint32_t interp_head; /* _PyRuntime -> interpreters.head */
	uint16_t interp_threads; /* PyInterpreterState -> threads head */
	uint16_t ts_next, ts_interp, ts_frame; /* PyThreadState */
	uint16_t ts_cframe, cframe_current; /* 3.11/3.12 */
	uint16_t ts_thread_id;
	uint16_t fr_back, fr_code, fr_instr, fr_owner; /* frame */
	uint16_t co_filename, co_name, co_qualname, co_firstlineno;
	uint16_t co_linetable, co_code_start;
	uint16_t ascii_data; /* sizeof(PyASCIIObject) */
	uint16_t str_length, str_hash; /* PyASCIIObject */
	uint16_t bytes_size; /* PyVarObject.ob_size of a PyBytesObject */
	uint16_t bytes_data; /* PyBytesObject.ob_sval */
	uint16_t tp_dealloc; /* PyTypeObject */
	/* 3.14+ (0 before) */
	uint8_t exec_mask; /* tag bits of f_executable, a _PyStackRef */
	int32_t tls_off; /* 3.15: bound PyThreadState at fsbase + tls_off */
	uint32_t alloc_obj; /* _PyRuntime -> allocators.standard.obj */
	/* 3.11+: PyThreadState -> datastack_chunk (NO before) */
	uint16_t ts_datastack;
};

struct py_runtime {
	int major, minor;
	char path[4096]; /* file defining _PyRuntime */
	uint64_t runtime; /* its address in the process */
	uint64_t bias; /* process address minus link-time address */
	uint64_t runtime_size;
	const struct py_layout *layout; /* &lay, or NULL when refused */
	struct py_layout lay; /* the table's row, 3.13+ as the process says */
	char why[160]; /* when -ENOTSUP: what did not match, one phrase */
};

/*
 * 3.13+: the first 16 bytes of _PyRuntime (_Py_DebugOffsets: the cookie
 * "xdebugpy", then PY_VERSION_HEX) must say this interpreter is
 * major.minor; a build or patch release that moved them is refused. 0, or
 * -ENOTSUP with the reason in why.
 */
int pyruntime__check_debug_header(const unsigned char *hdr, int major,
				  int minor, char *why, size_t size);

/*
 * 3.13+: the walker's offsets from _Py_DebugOffsets (buf, the first len
 * bytes of _PyRuntime, whose symbol is runtime_size bytes), over l, the
 * table's row for major.minor. Checked: cookie, version, a default (not
 * free-threaded) build, the runtime's size, every offset within its
 * struct. 0, or -ENOTSUP with the reason in why.
 */
int pyruntime__parse_debug_offsets(const unsigned char *buf, size_t len,
				   uint64_t runtime_size, struct py_layout *l,
				   char *why, size_t size);
/*
 * Where the thread's bound PyThreadState is, from the first instructions
 * of PyGILState_GetThisThreadState (code, at link address fn): the TLS
 * slot (3.15: mov %fs:disp32) or autoTSSkey's place in _PyRuntime (at
 * link address runtime: cmpl $0 or lea of its _is_initialized). Sets
 * l->tls_off or l->tss_key; 0, or -ENOENT when no known form is there.
 */
int pyruntime__decode_tstate(const uint8_t *code, size_t n, uint64_t fn,
			     uint64_t runtime, struct py_layout *l);

/* The layout for major.minor, or NULL when unknown. */
const struct py_layout *pyruntime__layout(int major, int minor);
/* Version from a file name: python3.11, libpython3.12.so.1.0. */
int pyruntime__version_from_path(const char *path, int *major, int *minor);
/*
 * Find CPython in pid. 0 on success; -ENOENT: not a CPython; -ENOTSUP:
 * a CPython whose layout is unknown (out.major/minor are set).
 */
int pyruntime__detect(pid_t pid, struct py_runtime *out);

#endif
