// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "html.h"
#include "snapdoc.h"

/*
 * The page is built into the binary by the assembler: an export works
 * from any directory, offline, and the page always matches the agent.
 */
__asm__(".pushsection .rodata\n"
	".global memprof_flamegraph_html\n"
	".type memprof_flamegraph_html, @object\n"
	"memprof_flamegraph_html:\n"
	".incbin \"user/format/flamegraph.html\"\n"
	".byte 0\n"
	".popsection\n");
extern const char memprof_flamegraph_html[];

#define DATA_MARK "@MEMPROF_DATA@"

/* ---- frames ------------------------------------------------------------- */

/* Box colour family: the page colours cells, Python, native and markers. */
static const char *frame_kind(json_t *f)
{
	const char *fn = json_string_value(json_object_get(f, "function"));

	if (!json_is_false(json_object_get(f, "native")))
		return "native";
	if (!json_object_get(f, "file") && fn && fn[0] == '[')
		return "mark"; /* [native thread], [import numpy], ... */
	return "py";
}

/* What the info line shows under the name: the full path, or lib+offset. */
static void frame_detail(json_t *f, char *buf, size_t size)
{
	const char *file = json_string_value(json_object_get(f, "file"));
	const char *mod = json_string_value(json_object_get(f, "module"));
	long long line = json_integer_value(json_object_get(f, "line"));
	long long off = json_integer_value(json_object_get(f, "offset"));

	if (file)
		snprintf(buf, size, "%s:%lld", file, line);
	else if (mod)
		snprintf(buf, size, "%s+0x%llx", mod, off);
	else
		buf[0] = '\0';
}

/*
 * snprintf cuts long names at a byte; jansson rejects a string whose last
 * UTF-8 sequence was cut, so drop such a tail.
 */
static void utf8_trim(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = s[i - 1];
	need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

struct frame_table {
	json_t *list; /* [[name, detail, kind], ...] */
	json_t *index; /* "kind\x1fname\x1fdetail" -> position */
};

/* Each distinct frame once: stacks share their roots, the page stays small. */
static json_t *intern(struct frame_table *t, const char *name,
		      const char *detail, const char *kind)
{
	char key[3200];
	json_t *at, *entry;

	snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", kind, name, detail);
	utf8_trim(key);
	at = json_object_get(t->index, key);
	if (at)
		return json_incref(at);
	entry = json_pack("[sss]", name, detail, kind);
	if (!entry) /* not UTF-8 after all: the index must still line up */
		entry = json_pack("[sss]", "?", "", kind);
	at = json_integer(json_array_size(t->list));
	json_array_append_new(t->list, entry);
	json_object_set(t->index, key, at);
	return at;
}

/*
 * A stack's boxes, root first: its cell, then the frames from the cell's
 * own code down (the kernel's event loop under every cell is noise), as
 * the folded export cuts them.
 */
static json_t *stack_path(struct frame_table *t, json_t *s, json_t *files)
{
	const char *cell = json_string_value(json_object_get(s, "cell"));
	json_t *frames = json_object_get(s, "frames"), *path = json_array();
	size_t j = snapdoc__cell_frame(
		frames, json_string_value(json_object_get(files, cell ?: "")));
	char name[1024], detail[2048];

	if (cell)
		json_array_append_new(path, intern(t, cell, "", "cell"));
	for (; j < json_array_size(frames); j++) {
		json_t *f = json_array_get(frames, j);

		snapdoc__frame_name(f, name, sizeof(name));
		frame_detail(f, detail, sizeof(detail));
		utf8_trim(name);
		utf8_trim(detail);
		json_array_append_new(path,
				      intern(t, name, detail, frame_kind(f)));
	}
	return path;
}

/* [bytes, count, path, where, cell] per stack with bytes at the peak. */
static json_t *stacks(json_t *doc, struct frame_table *t)
{
	json_t *peak = json_object_get(doc, "peak"), *out = json_array(), *s;
	json_t *files = snapdoc__cell_files(doc);
	char where[1024];
	size_t i;

	json_array_foreach(json_object_get(peak, "stacks"), i, s)
	{
		json_int_t bytes = json_integer_value(json_object_get(s, "byte"
									 "s"));
		json_t *cell = json_object_get(s, "cell");

		if (bytes <= 0)
			continue; /* no use for empty boxes */
		snapdoc__where(s, where, sizeof(where));
		utf8_trim(where);
		json_array_append_new(
			out,
			json_pack("[IIosO]", bytes,
				  json_integer_value(json_object_get(s, "coun"
									"t")),
				  stack_path(t, s, files), where,
				  json_is_string(cell) ? cell : json_null()));
	}
	json_decref(files);
	return out;
}

/* ---- the page's data ---------------------------------------------------- */

/* Copy a key as it is, null when missing: the page tests for null. */
static void copy_key(json_t *to, json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);

	json_object_set(to, key, v ? v : json_null());
}

static json_int_t int_at(json_t *doc, const char *section, const char *key)
{
	return json_integer_value(
		json_object_get(json_object_get(doc, section), key));
}

/* The header lines: who, why, when, the peak and any OOM or drops. */
static json_t *meta(json_t *doc)
{
	static const char *keys[] = {
		"comm",	    "pid",	 "cmdline",	 "reason",
		"taken_at", "exit_code", "exit_signal",	 "peak_cell",
		"oom",	    "rss_bytes", "unknown_frees"
	};
	json_t *m = json_object();
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		copy_key(m, doc, keys[i]);
	json_object_set_new(
		m, "dropped_events",
		json_integer(json_integer_value(json_object_get(doc, "dropped_"
								     "event"
								     "s"))));
	json_object_set_new(m, "peak_bytes",
			    json_integer(int_at(doc, "peak", "bytes")));
	json_object_set_new(m, "peak_count",
			    json_integer(int_at(doc, "peak", "count")));
	json_object_set_new(m, "current_bytes",
			    json_integer(int_at(doc, "current", "bytes")));
	copy_key(m, json_object_get(doc, "peak"), "at");
	json_object_set(m, "peak_at", json_object_get(m, "at"));
	json_object_del(m, "at");
	return m;
}

/* An array of the section's cells, or an empty one. */
static json_t *cells_of(json_t *doc, const char *section)
{
	json_t *c = json_object_get(json_object_get(doc, section), "cells");

	return json_is_array(c) ? json_incref(c) : json_array();
}

/* The snapshot's timeline as it is (the page checks it), or null. */
static json_t *timeline_of(json_t *doc)
{
	json_t *t = json_object_get(doc, "timeline");

	return json_is_object(t) ? json_incref(t) : json_null();
}

json_t *html__data(json_t *doc)
{
	struct frame_table t = { json_array(), json_object() };
	json_t *d = json_object();

	json_object_set_new(d, "generator", json_string("memprof-bpf"));
	json_object_set_new(d, "meta", meta(doc));
	json_object_set_new(d, "cells", cells_of(doc, "peak"));
	json_object_set_new(d, "cells_now", cells_of(doc, "current"));
	json_object_set_new(d, "stacks", stacks(doc, &t));
	json_object_set_new(d, "frames", t.list);
	json_object_set_new(d, "timeline", timeline_of(doc));
	json_decref(t.index);
	return d;
}

/* ---- writing ------------------------------------------------------------ */

/*
 * JSON inside <script>: a "</script>" or "<!--" in a frame name would end
 * or confuse the block. '<' only occurs inside JSON strings, where the
 * \u003c escape means the same character.
 */
static int put_script_json(FILE *out, const char *json)
{
	for (; *json; json++)
		if (*json == '<' ? fputs("\\u003c", out) < 0
				 : fputc(*json, out) == EOF)
			return -EIO;
	return 0;
}

int html__write(FILE *out, json_t *doc)
{
	const char *page = memprof_flamegraph_html;
	const char *mark = strstr(page, DATA_MARK);
	json_t *data = html__data(doc);
	char *json = json_dumps(data, JSON_COMPACT);
	int err = 0;

	json_decref(data);
	if (!json || !mark) {
		free(json);
		return -ENOMEM;
	}
	if (fwrite(page, 1, mark - page, out) != (size_t)(mark - page) ||
	    put_script_json(out, json) ||
	    fputs(mark + strlen(DATA_MARK), out) < 0)
		err = -EIO;
	free(json);
	return err;
}
