// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include "frame.h"
#include "text.h"

/* Import markers are the only labels made: one per site, not stored. */
const char *site_frame__function(const struct site_frame *f, char *buf,
				 size_t size)
{
	if (f->kind != FRAME_IMPORT)
		return f->function;
	snprintf(buf, size, "[import %s]", f->module);
	return buf;
}

/* The report's and the query's naming of a frame: one rule for both. */
void site_frame__name(const struct site_frame *f, char *buf, size_t size)
{
	char label[96];
	const char *fn = site_frame__function(f, label, sizeof(label));

	if (!fn)
		fn = "[unknown]";
	if (f->kind == FRAME_PYTHON && f->file)
		snprintf(buf, size, "%s (%s:%lld)", fn,
			 text__base_name(f->file), (long long)f->line);
	else if (f->kind == FRAME_NATIVE && f->module)
		snprintf(buf, size, "%s (%s)", fn, text__base_name(f->module));
	else
		snprintf(buf, size, "%s", fn);
}

/* Markers count as Python: they stand where the Python stack would. */
const struct site_frame *site_frame__leaf_python(const struct site_frame *f,
						 size_t n)
{
	while (n--)
		if (f[n].kind != FRAME_NATIVE)
			return &f[n];
	return NULL;
}

/* The innermost Python line says most; a native-only stack its caller. */
void site_frame__where(const struct site_frame *f, size_t n, char *buf,
		       size_t size)
{
	const struct site_frame *py = site_frame__leaf_python(f, n);

	if (py && py->kind == FRAME_PYTHON && py->file)
		snprintf(buf, size, "%s:%lld %s", text__base_name(py->file),
			 (long long)py->line,
			 py->function ? py->function : "?");
	else if (py)
		site_frame__name(py, buf, size);
	else if (n)
		site_frame__name(&f[n - 1], buf, size);
	else
		snprintf(buf, size, "(no frames)");
}
