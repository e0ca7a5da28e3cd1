// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/text.h"
#include "snapdoc.h"
#include "snapfile.h"

json_t *snapdoc__leaf_python(json_t *stack)
{
	json_t *frames = json_object_get(stack, "frames");
	size_t i = json_array_size(frames);

	while (i--) {
		json_t *f = json_array_get(frames, i);

		if (json_is_false(json_object_get(f, "native")))
			return f;
	}
	return NULL;
}

/* A snapshot's frame, typed; its strings stay in the document. */
static struct site_frame typed(json_t *f)
{
	const char *file = snapdoc__str(f, "file");
	bool native = !json_is_false(json_object_get(f, "native"));

	return (struct site_frame){ .kind = native ? FRAME_NATIVE
					    : file ? FRAME_PYTHON
						   : FRAME_MARKER,
				    .function = snapdoc__str(f, "function"),
				    .file = file,
				    .module = snapdoc__str(f, "module"),
				    .line = snapdoc__int(f, "line") };
}

/* Named by the rule the live agent names its sites' frames (lib/frame.c). */
void snapdoc__frame_name(json_t *f, char *buf, size_t size)
{
	struct site_frame t = typed(f);

	site_frame__name(&t, buf, size);
}

/* The innermost Python frame or, with none, the native leaf decides. */
void snapdoc__where(json_t *stack, char *buf, size_t size)
{
	json_t *py = snapdoc__leaf_python(stack);
	json_t *frames = json_object_get(stack, "frames");
	size_t n = json_array_size(frames);
	struct site_frame t = { 0 };

	if (py || n)
		t = typed(py ? py : json_array_get(frames, n - 1));
	site_frame__where(&t, py || n ? 1 : 0, buf, size);
}

/* ---- loading ------------------------------------------------------------ */

json_t *snapdoc__load(const char *path)
{
	char err[512];
	FILE *f = fopen(path, "r");
	json_t *doc;

	/* jansson would say "line -1: unable to open": name the cause. */
	if (!f) {
		log_err("%s: %s", path, strerror(errno));
		return NULL;
	}
	fclose(f);
	doc = snapfile__load(path, err, sizeof(err));
	if (!doc)
		log_err("%s", err);
	return doc;
}

/* The code file of each cell run, by label (from the peak's cells). */
json_t *snapdoc__cell_files(json_t *doc)
{
	json_t *cells = json_object_get(json_object_get(doc, "peak"), "cells");
	json_t *files = json_object(), *c;
	size_t i;

	json_array_foreach(cells, i, c) if (snapdoc__str(c, "label") &&
					    snapdoc__str(c, "file"))
		json_object_set(files, snapdoc__str(c, "label"),
				json_object_get(c, "file"));
	return files;
}

/*
 * Where a cell's stack starts to be the cell's: its code's outermost
 * frame. The kernel's event loop below it is the same for every cell and
 * would only make each flame a tall thin tower.
 */
size_t snapdoc__cell_frame(json_t *frames, const char *cell_file)
{
	json_t *f;
	size_t i;

	json_array_foreach(frames, i, f)
	{
		const char *file = snapdoc__str(f, "file");

		if (cell_file && file && !strcmp(file, cell_file))
			return i;
	}
	return 0;
}
