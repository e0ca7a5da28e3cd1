// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "lib/text.h"
#include "elfsym.h"
#include "memprof.h"
#include "procs.h"
#include "pyruntime.h"

#define NO 0xffff /* field absent in this version */

/*
 * From docs/cpython-offsets.md (verified against the local pyenv
 * 3.8.18-3.13.0 and Debian 3.11.2 interpreters) and, for 3.14.10 and
 * 3.15.2, docs/design/python314.md (Debian unstable's builds).
 * Columns: runtime_size, tss_key, interp_head, interp_threads, ts_next,
 * ts_interp, ts_frame, ts_cframe, cframe_current, ts_thread_id, fr_back,
 * fr_code, fr_instr, fr_owner, co_filename, co_name, co_qualname,
 * co_firstlineno, co_linetable, co_code_start, ascii_data; then the object
 * headers, alike in 3.8-3.15: str_length, str_hash, bytes_size,
 * bytes_data, tp_dealloc; then exec_mask, tls_off, alloc_obj (3.14+) and
 * ts_datastack (3.11+).
 * From 3.13 on, what _Py_DebugOffsets carries is read from the process
 * and the row only fills the rest (and cross-checks it in unit tests).
 */
static const struct py_layout layouts[] = {
	{ 3,	8,    0x5b8, 0x574, 0x20, 0x8,	0x8,  0x10, 0x18, NO,	NO,
	  0xb0, 0x18, 0x20,  0x68,  NO,	  0x68, 0x70, NO,   0x28, 0x78, NO,
	  48,	0x10, 0x18,  0x10,  0x20, 48,	0,    0,    0,	  NO },
	{ 3,	9,    0x290, 0x24c, 0x20, 0x8,	0x8,  0x10, 0x18, NO,	NO,
	  0xb0, 0x18, 0x20,  0x68,  NO,	  0x68, 0x70, NO,   0x28, 0x78, NO,
	  48,	0x10, 0x18,  0x10,  0x20, 48,	0,    0,    0,	  NO },
	{ 3,	10,   0x2a0, 0x24c, 0x20, 0x8,	0x8,  0x10, 0x18, NO,	NO,
	  0xb0, 0x18, 0x20,  0x60,  NO,	  0x68, 0x70, NO,   0x28, 0x78, NO,
	  48,	0x10, 0x18,  0x10,  0x20, 48,	0,    0,    0,	  NO },
	{ 3,	11,   0x28b20, 0x254, 0x28, 0x10, 0x8,	0x10, NO,   0x38, 0x8,
	  0x98, 0x30, 0x20,    0x38,  0x45, 0x70, 0x78, 0x80, 0x48, 0x88, 0xb8,
	  48,	0x10, 0x18,    0x10,  0x20, 48,	  0,	0,    0,    0x128 },
	{ 3,	12,   0x704a8, 0x60c, 0x28, 0x48, 0x8,	0x10, NO,   0x38, 0x0,
	  0x88, 0x8,  0x0,     0x38,  0x46, 0x70, 0x78, 0x80, 0x44, 0x88, 0xc0,
	  40,	0x10, 0x18,    0x10,  0x20, 48,	  0,	0,    0,    0xe8 },
	{ 3,	13,   0x452b8, 0x874, 0x278, 0x1cb0, 0x8,  0x10,
	  0x48, NO,   NO,      0x98,  0x8,   0x0,    0x38, 0x46,
	  0x70, 0x78, 0x80,    0x44,  0x88,  0xc8,   40,   0x10,
	  0x18, 0x10, 0x20,    48,    0,     0,	     0,	   0xe8 },
	{ 3,	14,   0x4d4c8, 0x924, 0x328, 0x1cb0, 0x8,   0x10,
	  0x48, NO,   NO,      0x98,  0x8,   0x0,    0x38,  0x4a,
	  0x70, 0x78, 0x80,    0x44,  0x88,  0xd0,   40,    0x10,
	  0x18, 0x10, 0x20,    48,    3,     0,	     0x3c0, 0xe8 },
	{ 3,	15,   0x549c8, 0,    0x3a8, 0x1ca8, 0x8,   0x10,
	  0x48, NO,   NO,      0xb0, 0x8,   0x0,    0x38,  0x4a,
	  0x70, 0x78, 0x80,    0x44, 0x88,  0xd0,   40,	   0x10,
	  0x18, 0x10, 0x20,    48,   3,	    -0x28,  0x440, 0x100 },
};

/*
 * Where _Py_DebugOffsets keeps each field the walker uses: the struct is
 * only stable within a minor version (docs/design/python314.md, 1.2).
 */
struct debug_pos {
	uint8_t minor;
	uint16_t len; /* sizeof(_Py_DebugOffsets) */
	uint16_t runtime_size, interp_head, interp_threads;
	uint16_t ts_size, ts_next, ts_interp, ts_frame, ts_thread_id;
	uint16_t ts_datastack;
	uint16_t fr_size, fr_back, fr_code, fr_instr, fr_owner;
	uint16_t co_size, co_filename, co_name, co_qualname, co_linetable;
	uint16_t co_firstlineno, co_code_start;
	uint16_t bytes_size, bytes_data, str_length, ascii_data;
};

static const struct debug_pos debug_pos[] = {
	{ 13,	 0x248, 0x18,  0x28,  0x48,  0x98,  0xa8,  0xb0,  0xb8,
	  0xc0,	 0xd0,	0xe0,  0xe8,  0xf0,  0xf8,  0x108, 0x110, 0x118,
	  0x120, 0x128, 0x130, 0x138, 0x158, 0x208, 0x210, 0x228, 0x230 },
	{ 14,	 0x2f8, 0x18,  0x28,  0x48,  0xb0,  0xc0,  0xc8,  0xd0,
	  0xd8,	 0xe8,	0xf8,  0x100, 0x108, 0x110, 0x120, 0x138, 0x140,
	  0x148, 0x150, 0x158, 0x160, 0x180, 0x258, 0x260, 0x278, 0x280 },
	{ 15,	 0x378, 0x18,  0x28,  0x48,  0xb0,  0xc0,  0xc8,  0xd0,
	  0xf0,	 0x100, 0x138, 0x140, 0x148, 0x150, 0x160, 0x178, 0x180,
	  0x188, 0x190, 0x198, 0x1a0, 0x1c0, 0x2b8, 0x2c0, 0x2d8, 0x2e0 },
};

#define DEBUG_MAX_LEN 0x400 /* read from _PyRuntime: covers every row */
#define FREE_THREADED 0x10 /* its place in every version */

const struct py_layout *pyruntime__layout(int major, int minor)
{
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].major == major && layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

int pyruntime__version_from_path(const char *path, int *major, int *minor)
{
	const char *base = text__base_name(path);
	char tail[8];

	if (strncmp(base, "lib", 3) == 0)
		base += 3;
	if (sscanf(base, "python%d.%d%7s", major, minor, tail) < 2)
		return -ENOENT;
	return *major == 3 ? 0 : -ENOENT;
}

struct file_map {
	char path[4096];
	uint64_t start0; /* start of its mapping at file offset 0 */
};

/*
 * Files that may define _PyRuntime: python3.X and libpython3.X.so*, named
 * as the agent can open them (another root's: procs__file_path).
 */
static int python_files(pid_t pid, struct file_map *out, int max)
{
	char fname[64], line[4400], path[4096];
	unsigned long long start, end, off, ino;
	unsigned int maj, min;
	int n = 0, major, minor;
	FILE *f;

	snprintf(fname, sizeof(fname), "/proc/%d/maps", pid);
	f = fopen(fname, "re");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		path[0] = '\0';
		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu %4095[^\n]",
			   &start, &end, &off, &maj, &min, &ino, path) < 7 ||
		    off != 0 || path[0] != '/' ||
		    pyruntime__version_from_path(path, &major, &minor))
			continue;
		procs__file_path(pid, path, makedev(maj, min), ino, out[n].path,
				 sizeof(out[n].path));
		out[n++].start0 = start;
	}
	fclose(f);
	return n;
}

/* Load bias: where the first PT_LOAD (page-aligned) was mapped. */
static uint64_t load_bias(const struct file_map *fm)
{
	struct elfsym *e = elfsym__open(fm->path);
	uint64_t first = 0;

	if (e && e->nloads)
		first = e->loads[0].vaddr & ~0xfffULL;
	elfsym__close(e);
	return fm->start0 - first;
}

int pyruntime__check_debug_header(const unsigned char *hdr, int major,
				  int minor, char *why, size_t size)
{
	uint64_t version;

	if (memcmp(hdr, "xdebugpy", 8) != 0) {
		snprintf(why, size,
			 "its _PyRuntime does not start with "
			 "_Py_DebugOffsets' cookie");
		return -ENOTSUP;
	}
	memcpy(&version, hdr + 8, sizeof(version)); /* little endian */
	if (((version >> 24) & 0xff) != (uint64_t)major ||
	    ((version >> 16) & 0xff) != (uint64_t)minor) {
		snprintf(why, size,
			 "its _Py_DebugOffsets says version %d.%d, not %d.%d",
			 (int)((version >> 24) & 0xff),
			 (int)((version >> 16) & 0xff), major, minor);
		return -ENOTSUP;
	}
	return 0;
}

static const struct debug_pos *debug_pos_of(int minor)
{
	size_t i;

	for (i = 0; i < sizeof(debug_pos) / sizeof(debug_pos[0]); i++)
		if (debug_pos[i].minor == minor)
			return &debug_pos[i];
	return NULL;
}

/* The u64 at pos of the struct (little endian, as the target wrote it). */
static uint64_t dbg(const unsigned char *buf, uint16_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/*
 * Offset read at pos into *out, when it lies within [0, limit - width):
 * inside its struct and inside what the walker copies of it. A patch
 * release that moved a field is followed; a struct we misparse shows up
 * as an offset out of bounds and is refused.
 */
static bool take(const unsigned char *buf, uint16_t pos, uint64_t limit,
		 unsigned width, const char *field, uint16_t *out, char *why,
		 size_t size)
{
	uint64_t v = dbg(buf, pos);

	if (v + width > limit || v >= PY_FIELD_NONE) {
		snprintf(why, size,
			 "its _Py_DebugOffsets puts %s at 0x%llx, beyond what "
			 "memprof-bpf reads (0x%llx)",
			 field, (unsigned long long)v,
			 (unsigned long long)limit);
		return false;
	}
	*out = v;
	return true;
}

/* The smaller of a struct's size and what the walker copies of it. */
static uint64_t within(const unsigned char *buf, uint16_t size_pos,
		       uint64_t copied)
{
	uint64_t n = dbg(buf, size_pos);

	return n < copied ? n : copied;
}

int pyruntime__parse_debug_offsets(const unsigned char *buf, size_t len,
				   uint64_t runtime_size, struct py_layout *l,
				   char *why, size_t size)
{
	const struct debug_pos *p = debug_pos_of(l->minor);
	uint64_t fr, co, ts, head;
	uint16_t h16 = 0;
	bool ok;

	if (!p || len < p->len) {
		snprintf(why, size,
			 "memprof-bpf cannot parse its "
			 "_Py_DebugOffsets");
		return -ENOTSUP;
	}
	if (pyruntime__check_debug_header(buf, l->major, l->minor, why, size))
		return -ENOTSUP;
	if (dbg(buf, FREE_THREADED)) {
		snprintf(why, size,
			 "it is a free-threaded build (%d.%dt), whose frames "
			 "memprof-bpf cannot walk yet",
			 l->major, l->minor);
		return -ENOTSUP;
	}
	if (dbg(buf, p->runtime_size) != runtime_size) {
		snprintf(why, size,
			 "its _Py_DebugOffsets says _PyRuntime is %llu bytes, "
			 "its symbol %llu",
			 (unsigned long long)dbg(buf, p->runtime_size),
			 (unsigned long long)runtime_size);
		return -ENOTSUP;
	}
	head = dbg(buf, p->interp_head);
	if (head + 8 > runtime_size) {
		snprintf(why, size,
			 "its _Py_DebugOffsets puts interpreters.head at "
			 "0x%llx, outside _PyRuntime",
			 (unsigned long long)head);
		return -ENOTSUP;
	}
	l->interp_head = head;
	l->runtime_size = runtime_size;
	ts = dbg(buf, p->ts_size);
	fr = within(buf, p->fr_size, PY_FRAME_HDR);
	co = within(buf, p->co_size, PY_CODE_HDR);
	ok = take(buf, p->interp_threads, 0x100000, 8, "threads.head",
		  &l->interp_threads, why, size) &&
	     take(buf, p->ts_next, ts, 8, "PyThreadState.next", &l->ts_next,
		  why, size) &&
	     take(buf, p->ts_interp, ts, 8, "PyThreadState.interp",
		  &l->ts_interp, why, size) &&
	     take(buf, p->ts_frame, ts, 8, "PyThreadState.current_frame",
		  &l->ts_frame, why, size) &&
	     take(buf, p->ts_thread_id, ts, 8, "PyThreadState.thread_id",
		  &l->ts_thread_id, why, size) &&
	     take(buf, p->ts_datastack, ts, 8, "PyThreadState.datastack_chunk",
		  &l->ts_datastack, why, size) &&
	     take(buf, p->fr_back, fr, 8, "a frame's previous", &l->fr_back,
		  why, size) &&
	     take(buf, p->fr_code, fr, 8, "a frame's f_executable", &l->fr_code,
		  why, size) &&
	     take(buf, p->fr_instr, fr, 8, "a frame's instr_ptr", &l->fr_instr,
		  why, size) &&
	     take(buf, p->fr_owner, fr, 1, "a frame's owner", &l->fr_owner, why,
		  size) &&
	     take(buf, p->co_filename, co, 8, "co_filename", &l->co_filename,
		  why, size) &&
	     take(buf, p->co_name, co, 8, "co_name", &l->co_name, why, size) &&
	     take(buf, p->co_qualname, co, 8, "co_qualname", &l->co_qualname,
		  why, size) &&
	     take(buf, p->co_linetable, co, 8, "co_linetable", &l->co_linetable,
		  why, size) &&
	     take(buf, p->co_firstlineno, co, 4, "co_firstlineno",
		  &l->co_firstlineno, why, size) &&
	     take(buf, p->co_code_start, dbg(buf, p->co_size), 2,
		  "co_code_adaptive", &l->co_code_start, why, size) &&
	     take(buf, p->bytes_size, 0x100, 8, "a bytes object's size",
		  &l->bytes_size, why, size) &&
	     take(buf, p->bytes_data, 0x100, 1, "a bytes object's data",
		  &l->bytes_data, why, size) &&
	     take(buf, p->str_length, 0x100, 8, "a str's length",
		  &l->str_length, why, size) &&
	     take(buf, p->ascii_data, 0x100, 0, "a str's data", &h16, why,
		  size);
	l->ascii_data = h16;
	return ok ? 0 : -ENOTSUP;
}

/* Skip an endbr64 (CET builds start every exported function with one). */
static size_t past_endbr(const uint8_t *c, size_t n)
{
	return n >= 4 && memcmp(c, "\xf3\x0f\x1e\xfa", 4) == 0 ? 4 : 0;
}

int pyruntime__decode_tstate(const uint8_t *c, size_t n, uint64_t fn,
			     uint64_t runtime, struct py_layout *l)
{
	size_t i = past_endbr(c, n), j;
	int32_t d;

	/* 3.15, local-exec TLS: mov %fs:disp32,%rax */
	if (i + 9 <= n && memcmp(c + i, "\x64\x48\x8b\x04\x25", 5) == 0) {
		memcpy(&d, c + i + 5, 4);
		if (d >= 0 || d < -4096)
			return -ENOENT;
		l->tls_off = d, l->tss_key = 0;
		return 0;
	}
	/* non-PIE: cmpl $0,disp32(%rip) on autoTSSkey._is_initialized */
	if (i + 7 <= n && c[i] == 0x83 && c[i + 1] == 0x3d && c[i + 6] == 0) {
		memcpy(&d, c + i + 2, 4);
		l->tss_key = fn + i + 7 + d + 4 - runtime;
		l->tls_off = 0;
		return 0;
	}
	/* PIC: mov _PyRuntime@GOT(%rip),%rax, then lea disp32(%rax),%reg */
	if (i + 7 > n || memcmp(c + i, "\x48\x8b\x05", 3) != 0)
		return -ENOENT;
	for (j = i + 7; j + 7 <= n && j < i + 16; j++) {
		if (c[j] == 0x48 && c[j + 1] == 0x8d &&
		    (c[j + 2] & 0xc7) == 0x80) {
			memcpy(&d, c + j + 3, 4);
			l->tss_key = d + 4;
			l->tls_off = 0;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * 3.13+: the bound thread state's place from the file's code. A 3.15+
 * whose TLS we cannot decode (a shared libpython's general-dynamic TLS)
 * is refused rather than read at a guessed offset.
 */
static int find_tstate(const char *path, uint64_t runtime_vaddr,
		       struct py_runtime *rt)
{
	struct elfsym *e = elfsym__open(path);
	const struct elf_func *f =
		e ? elfsym__by_name(e, "PyGILState_GetThisThreadState") : NULL;
	uint8_t code[32];
	int err = -ENOENT;

	if (f && !elfsym__read(e, f->vaddr, code, sizeof(code)))
		err = pyruntime__decode_tstate(code, sizeof(code), f->vaddr,
					       runtime_vaddr, &rt->lay);
	elfsym__close(e);
	if (!err && rt->lay.tss_key + 4 > rt->runtime_size && !rt->lay.tls_off)
		err = -ENOENT;
	if (err && rt->lay.tls_off) {
		snprintf(rt->why, sizeof(rt->why),
			 "memprof-bpf cannot find its thread state "
			 "(PyGILState_GetThisThreadState not decoded)");
		return -ENOTSUP;
	}
	return 0; /* not decoded: the table's autoTSSkey, checked in BPF */
}

/* 3.13+: read _Py_DebugOffsets from the process and take the layout. */
static int read_debug_offsets(pid_t pid, struct py_runtime *rt)
{
	unsigned char buf[DEBUG_MAX_LEN];
	size_t len = rt->runtime_size < sizeof(buf) ? rt->runtime_size
						    : sizeof(buf);

	if (procs__read_mem(pid, rt->runtime, buf, len)) {
		snprintf(rt->why, sizeof(rt->why),
			 "its _PyRuntime could not be read");
		return -ENOTSUP;
	}
	return pyruntime__parse_debug_offsets(
		buf, len, rt->runtime_size, &rt->lay, rt->why, sizeof(rt->why));
}

/*
 * The layout of the interpreter found in path: the table's row, then for
 * 3.13+ what the process itself says. 0, or -ENOTSUP with rt->why.
 */
static int take_layout(pid_t pid, uint64_t vaddr, struct py_runtime *rt)
{
	const struct py_layout *row = pyruntime__layout(rt->major, rt->minor);

	if (!row) {
		snprintf(rt->why, sizeof(rt->why),
			 "memprof-bpf has no layout for it");
		return -ENOTSUP;
	}
	rt->lay = *row;
	if (rt->minor < 13) {
		/* A different struct size means a build we have no table for. */
		if (row->runtime_size == rt->runtime_size)
			return 0;
		snprintf(rt->why, sizeof(rt->why),
			 "its _PyRuntime is %llu bytes, not the %u of "
			 "the known layout",
			 (unsigned long long)rt->runtime_size,
			 row->runtime_size);
		return -ENOTSUP;
	}
	if (read_debug_offsets(pid, rt))
		return -ENOTSUP;
	return find_tstate(rt->path, vaddr, rt);
}

int pyruntime__detect(pid_t pid, struct py_runtime *rt)
{
	struct file_map files[8];
	uint64_t vaddr, size;
	int n, i;

	memset(rt, 0, sizeof(*rt));
	n = python_files(pid, files, 8);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (elfsym__object(files[i].path, "_PyRuntime", &vaddr, &size))
			continue; /* python3.X launcher of a shared build */
		pyruntime__version_from_path(files[i].path, &rt->major,
					     &rt->minor);
		snprintf(rt->path, sizeof(rt->path), "%.4000s", files[i].path);
		rt->bias = load_bias(&files[i]);
		rt->runtime = rt->bias + vaddr;
		rt->runtime_size = size;
		if (take_layout(pid, vaddr, rt))
			return -ENOTSUP;
		rt->layout = &rt->lay;
		return 0;
	}
	return -ENOENT;
}
