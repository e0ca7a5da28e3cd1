/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One frame of a site's stack, typed: what the snapshot writes as JSON,
 * the top view as text and the query socket as its reply, each at its
 * own edge (user/model/site.h yields them). Strings are referred to, never
 * copied: Python names belong to the interned code objects (pystacks),
 * native names to the site's resolved caller, marker labels are literals.
 */
#ifndef MEMPROF_FRAME_H
#define MEMPROF_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum frame_kind {
	FRAME_PYTHON, /* function (co_name), file (co_filename), line */
	FRAME_NATIVE, /* function, module (NULL: unknown), addr, offset */
	FRAME_MARKER, /* function is a label: "[truncated]", ... */
	FRAME_IMPORT, /* module is being imported: "[import module]" */
};

struct site_frame {
	enum frame_kind kind;
	bool resolved; /* native: its address went through the symbolizer */
	int64_t line;
	const char *function, *file, *module;
	uint64_t addr, offset;
};

/* The frame's function name; an import marker's label is made in buf. */
const char *site_frame__function(const struct site_frame *f, char *buf,
				 size_t size);
/*
 * One frame as people read it: Python "function (file.py:12)", markers
 * such as "[native thread]" as they are, native "function (libc.so.6)".
 */
void site_frame__name(const struct site_frame *f, char *buf, size_t size);
/* The innermost non-native frame (Python or marker) of n, or NULL. */
const struct site_frame *site_frame__leaf_python(const struct site_frame *f,
						 size_t n);
/* Where a stack allocates: "file.py:12 function", else "function (lib)". */
void site_frame__where(const struct site_frame *f, size_t n, char *buf,
		       size_t size);

#endif
