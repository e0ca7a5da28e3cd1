// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include "folded.h"
#include "snapdoc.h"

/* Folded names cannot hold the separator or a line break. */
static void put_folded_name(FILE *out, const char *name)
{
	for (; *name; name++)
		fputc(*name == ';' ? ':' : *name == '\n' ? ' ' : *name, out);
}

/* One stack: its cell, then its frames from the cell's root down. */
static void folded_line(FILE *out, json_t *s, json_t *files)
{
	const char *cell = snapdoc__str(s, "cell");
	json_t *frames = json_object_get(s, "frames");
	size_t j = snapdoc__cell_frame(frames,
				       snapdoc__str(files, cell ? cell : ""));
	char name[1024];

	if (cell)
		put_folded_name(out, cell);
	for (; j < json_array_size(frames); j++) {
		snapdoc__frame_name(json_array_get(frames, j), name,
				    sizeof(name));
		if (cell || j)
			fputc(';', out);
		put_folded_name(out, name);
	}
	fprintf(out, " %lld\n", (long long)snapdoc__int(s, "bytes"));
}

void folded__write(FILE *out, json_t *doc)
{
	json_t *peak = json_object_get(doc, "peak");
	json_t *files = snapdoc__cell_files(doc), *s;
	size_t i;

	json_array_foreach(json_object_get(peak, "stacks"), i, s)
	{
		if (snapdoc__int(s, "bytes") > 0) /* no use for empty boxes */
			folded_line(out, s, files);
	}
	json_decref(files);
}
