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

/* Missing keys read as 0 / NULL: jansson's getters accept NULL. */
static json_int_t int_of(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str_of(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

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
	const char *file = str_of(f, "file");
	bool native = !json_is_false(json_object_get(f, "native"));

	return (struct site_frame){ .kind = native ? FRAME_NATIVE
					    : file ? FRAME_PYTHON
						   : FRAME_MARKER,
				    .function = str_of(f, "function"),
				    .file = file,
				    .module = str_of(f, "module"),
				    .line = int_of(f, "line") };
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

	json_array_foreach(cells, i,
			   c) if (str_of(c, "label") && str_of(c, "file"))
		json_object_set(files, str_of(c, "label"),
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
		const char *file = str_of(f, "file");

		if (cell_file && file && !strcmp(file, cell_file))
			return i;
	}
	return 0;
}
