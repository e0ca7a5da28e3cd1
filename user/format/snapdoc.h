/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a snapshot document: its stacks' frames named as people read
 * them, and its cells' code files. Shared by report, diff and the HTML
 * page; nothing of the live agent.
 */
#ifndef MEMPROF_SNAPDOC_H
#define MEMPROF_SNAPDOC_H

#include <jansson.h>
#include <stddef.h>

/* A field of a document object; missing keys read as 0 / NULL. */
static inline json_int_t snapdoc__int(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static inline const char *snapdoc__str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * Load and validate a snapshot; NULL after one error line on stderr
 * (the file named, missing or damaged).
 */
json_t *snapdoc__load(const char *path);

/* The innermost Python frame of a stack, or NULL (native-only stack). */
json_t *snapdoc__leaf_python(json_t *stack);

/* Where a stack allocates: "file.py:12 function", else "function (lib)". */
void snapdoc__where(json_t *stack, char *buf, size_t size);

/* One frame as a flame graph box or folded frame names it. */
void snapdoc__frame_name(json_t *f, char *buf, size_t size);

/* {label: cell code file} of the peak's cell runs. Caller decrefs. */
json_t *snapdoc__cell_files(json_t *doc);

/* Index of the first frame in cell_file (0 when none): a cell's root. */
size_t snapdoc__cell_frame(json_t *frames, const char *cell_file);

#endif
