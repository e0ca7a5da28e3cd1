// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "format/snapdoc.h"
#include "unit.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	cr_assert_not_null(j, "%s", e.text);
	return j;
}

#define PY(fn, file, line)                                                \
	"{\"native\": false, \"function\": \"" fn "\", \"file\": \"" file \
	"\", \"line\": " #line "}"
/* A native frame: "function" in library "mod". */
#define NATIVE(fn, mod)                                                        \
	"{\"native\": true, \"function\": \"" fn "\", \"module\": \"" mod "\"" \
	"}"

/* Python frames by file name and line, native ones by library. */
Test(snapdoc, frame_names, .timeout = 10)
{
	json_t *py = parse(PY("load", "/home/u/data.py", 7));
	json_t *nat = parse(NATIVE("malloc", "/usr/lib/libc.so.6"));
	json_t *marker = parse("{\"native\": false, \"function\": "
			       "\"[native thread]\"}");
	json_t *anon = parse("{\"native\": true}");
	char buf[128];

	snapdoc__frame_name(py, buf, sizeof(buf));
	cr_assert_str_eq(buf, "load (data.py:7)");
	snapdoc__frame_name(nat, buf, sizeof(buf));
	cr_assert_str_eq(buf, "malloc (libc.so.6)");
	snapdoc__frame_name(marker, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[native thread]");
	snapdoc__frame_name(anon, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[unknown]");
	json_decref(py);
	json_decref(nat);
	json_decref(marker);
	json_decref(anon);
}

/* Where a stack allocates: its innermost Python frame, else its leaf. */
Test(snapdoc, where_and_leaf_python, .timeout = 10)
{
	json_t *s = parse("{\"frames\": [" PY("<module>", "/t/1.py", 2) ", " PY(
		"grow", "/t/lib.py", 30) ", " NATIVE("malloc",
						     "libc.so.6") "]}");
	json_t *n = parse("{\"frames\": [" NATIVE("main", "a.out") ", " NATIVE(
		"malloc", "libc.so.6") "]}");
	json_t *e = parse("{\"frames\": []}");
	char buf[128];

	cr_assert_str_eq(json_string_value(
				 json_object_get(snapdoc__leaf_python(s), "func"
									  "tio"
									  "n")),
			 "grow");
	snapdoc__where(s, buf, sizeof(buf));
	cr_assert_str_eq(buf, "lib.py:30 grow");
	cr_assert_null(snapdoc__leaf_python(n));
	snapdoc__where(n, buf, sizeof(buf));
	cr_assert_str_eq(buf, "malloc (libc.so.6)");
	snapdoc__where(e, buf, sizeof(buf));
	cr_assert_str_eq(buf, "(no frames)");
	json_decref(s);
	json_decref(n);
	json_decref(e);
}

/* A cell's stack starts at its code's outermost frame. */
Test(snapdoc, cell_files_and_cell_frame, .timeout = 10)
{
	json_t *doc = parse("{\"peak\": {\"cells\": [{\"label\": \"In [3]\", "
			    "\"file\": \"/t/3507.py\"}, {\"label\": "
			    "\"(outside cells)\"}]}}");
	json_t *frames = parse("[" PY("run", "/k/kernel.py", 1) ", " PY(
		"<module>", "/t/3507.py", 1) ", " PY("f", "/t/3507.py", 9) "]");
	json_t *files = snapdoc__cell_files(doc);
	const char *file = json_string_value(json_object_get(files, "In [3]"));

	cr_assert_str_eq(file, "/t/3507.py");
	cr_assert_eq(json_object_size(files), 1);
	cr_assert_eq(snapdoc__cell_frame(frames, file), 1);
	cr_assert_eq(snapdoc__cell_frame(frames, "/other.py"), 0);
	cr_assert_eq(snapdoc__cell_frame(frames, NULL), 0);
	json_decref(files);
	json_decref(frames);
	json_decref(doc);
}
