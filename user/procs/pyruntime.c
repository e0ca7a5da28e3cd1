// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/text.h"
#include "elfsym.h"
#include "pyruntime.h"

#define NO 0xffff /* field absent in this version */

/*
 * From docs/cpython-offsets.md (verified against the local pyenv
 * 3.8.18-3.13.0 and Debian 3.11.2 interpreters).
 * Columns: runtime_size, tss_key, interp_head, interp_threads, ts_next,
 * ts_interp, ts_frame, ts_cframe, cframe_current, ts_thread_id, fr_back,
 * fr_code, fr_instr, fr_owner, co_filename, co_name, co_qualname,
 * co_firstlineno, co_linetable, co_code_start, ascii_data; then the object
 * headers, alike in 3.8-3.13: str_length, str_hash, bytes_size,
 * bytes_data, tp_dealloc.
 */
static const struct py_layout layouts[] = {
	{ 3,	8,    0x5b8, 0x574, 0x20, 0x8,	0x8,  0x10, 0x18, NO,
	  NO,	0xb0, 0x18,  0x20,  0x68, NO,	0x68, 0x70, NO,	  0x28,
	  0x78, NO,   48,    0x10,  0x18, 0x10, 0x20, 48 },
	{ 3,	9,    0x290, 0x24c, 0x20, 0x8,	0x8,  0x10, 0x18, NO,
	  NO,	0xb0, 0x18,  0x20,  0x68, NO,	0x68, 0x70, NO,	  0x28,
	  0x78, NO,   48,    0x10,  0x18, 0x10, 0x20, 48 },
	{ 3,	10,   0x2a0, 0x24c, 0x20, 0x8,	0x8,  0x10, 0x18, NO,
	  NO,	0xb0, 0x18,  0x20,  0x60, NO,	0x68, 0x70, NO,	  0x28,
	  0x78, NO,   48,    0x10,  0x18, 0x10, 0x20, 48 },
	{ 3,	11,   0x28b20, 0x254, 0x28, 0x10, 0x8,	0x10, NO,   0x38,
	  0x8,	0x98, 0x30,    0x20,  0x38, 0x45, 0x70, 0x78, 0x80, 0x48,
	  0x88, 0xb8, 48,      0x10,  0x18, 0x10, 0x20, 48 },
	{ 3,	12,   0x704a8, 0x60c, 0x28, 0x48, 0x8,	0x10, NO,   0x38,
	  0x0,	0x88, 0x8,     0x0,   0x38, 0x46, 0x70, 0x78, 0x80, 0x44,
	  0x88, 0xc0, 40,      0x10,  0x18, 0x10, 0x20, 48 },
	{ 3,	13,   0x452b8, 0x874, 0x278, 0x1cb0, 0x8,  0x10, 0x48, NO,
	  NO,	0x98, 0x8,     0x0,   0x38,  0x46,   0x70, 0x78, 0x80, 0x44,
	  0x88, 0xc8, 40,      0x10,  0x18,  0x10,   0x20, 48 },
};

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

/* Files that may define _PyRuntime: python3.X and libpython3.X.so*. */
static int python_files(pid_t pid, struct file_map *out, int max)
{
	char fname[64], line[4400], path[4096];
	unsigned long long start, end, off;
	int n = 0, major, minor;
	FILE *f;

	snprintf(fname, sizeof(fname), "/proc/%d/maps", pid);
	f = fopen(fname, "re");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		path[0] = '\0';
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %4095[^\n]",
			   &start, &end, &off, path) < 4 ||
		    off != 0 || path[0] != '/' ||
		    pyruntime__version_from_path(path, &major, &minor))
			continue;
		snprintf(out[n].path, sizeof(out[n].path), "%s", path);
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

/* 3.13+: _Py_DebugOffsets starts _PyRuntime; read it and check it. */
static int check_debug_offsets(pid_t pid, struct py_runtime *rt)
{
	unsigned char hdr[16];
	char fname[64];
	int fd, err;

	if (rt->major == 3 && rt->minor < 13)
		return 0;
	snprintf(fname, sizeof(fname), "/proc/%d/mem", pid);
	fd = open(fname, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, hdr, sizeof(hdr), rt->runtime) != sizeof(hdr)) {
		snprintf(rt->why, sizeof(rt->why),
			 "its _PyRuntime could not be read");
		err = -ENOTSUP;
	} else {
		err = pyruntime__check_debug_header(hdr, rt->major, rt->minor,
						    rt->why, sizeof(rt->why));
	}
	close(fd);
	return err;
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
		rt->layout = pyruntime__layout(rt->major, rt->minor);
		/* A different struct size means a build we have no table for. */
		if (!rt->layout)
			snprintf(rt->why, sizeof(rt->why),
				 "memprof-bpf has no layout for it");
		else if (rt->layout->runtime_size != size)
			snprintf(rt->why, sizeof(rt->why),
				 "its _PyRuntime is %llu bytes, not the %u of "
				 "the known layout",
				 (unsigned long long)size,
				 rt->layout->runtime_size);
		if (!rt->layout || rt->layout->runtime_size != size ||
		    check_debug_offsets(pid, rt)) {
			rt->layout = NULL;
			return -ENOTSUP;
		}
		return 0;
	}
	return -ENOENT;
}
