// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export.h"
#include "format/folded.h"
#include "format/html.h"
#include "format/pprof.h"
#include "format/snapfile.h"
#include "format/snapv2.h"

static const char *const suffixes[] = {
	[SNAP_SNAPSHOT] = ".json.gz", [SNAP_JSON] = ".json",
	[SNAP_FOLDED] = ".folded",    [SNAP_HTML] = ".html",
	[SNAP_PPROF] = ".pb.gz",
};

const char *export__suffix(enum snap_format f)
{
	return suffixes[f];
}

/* Folded, HTML and pprof are drawn by the report code into memory first. */
static int render(json_t *doc, enum snap_format f, char **text, size_t *len)
{
	FILE *mem = open_memstream(text, len);
	int err = 0;

	if (!mem)
		return -errno;
	if (f == SNAP_HTML)
		err = html__write(mem, doc);
	else if (f == SNAP_PPROF)
		err = pprof__write(mem, doc);
	else
		folded__write(mem, doc);
	if (fclose(mem) && !err)
		err = -ENOMEM;
	return err;
}

/* Every format but the compact one starts from version 1's shape. */
static int save_expanded(json_t *doc, enum snap_format f, const char *path,
			 bool replace)
{
	char *text = NULL;
	size_t len = 0;
	int err;

	if (f == SNAP_JSON)
		return snapfile__save(doc, path, replace);
	err = render(doc, f, &text, &len);
	if (!err && f == SNAP_PPROF)
		err = snapfile__save_binary(text, len, path, replace);
	else if (!err)
		err = snapfile__save_text(text, len, path, replace);
	free(text);
	return err;
}

int export__save(json_t *doc, enum snap_format f, const char *path,
		 bool replace)
{
	char why[256];
	json_t *v1;
	int err;

	if (f == SNAP_SNAPSHOT)
		return snapfile__save(doc, path, replace);
	if (json_integer_value(json_object_get(doc, "version")) != 2)
		return save_expanded(doc, f, path, replace);
	v1 = snapv2__expand(doc, why, sizeof(why));
	if (!v1)
		return -ENOMEM; /* ours, and whole: only memory can fail */
	err = save_expanded(v1, f, path, replace);
	json_decref(v1);
	return err;
}
