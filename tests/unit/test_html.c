// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "format/html.h"
#include "unit.h"

/*
 * A notebook snapshot cut down by hand: a cell's stack under the kernel's
 * event loop, a stack outside cells, and a frame name that would end the
 * page's <script> block if written as it is.
 */
static const char doc_text[] =
	"{\"schema\":\"memprof-bpf/snapshot\",\"version\":1,\"pid\":42,"
	"\"comm\":\"python3\",\"reason\":\"oom\",\"taken_at\":\"T\","
	"\"exit_code\":null,\"exit_signal\":9,\"dropped_events\":0,"
	"\"peak_cell\":\"In [2]\","
	"\"oom\":{\"memory_cgroup\":\"/user/x\",\"limit_bytes\":1000},"
	"\"peak\":{\"bytes\":700,\"count\":3,\"at\":\"P\","
	" \"cells\":[{\"label\":\"In [2]\",\"file\":\"/tmp/ipykernel_1/9.py\","
	"   \"bytes_at_process_peak\":600}],"
	" \"stacks\":["
	"  {\"bytes\":600,\"count\":1,\"cell\":\"In [2]\",\"frames\":["
	"   {\"function\":\"run_forever\",\"file\":\"/usr/lib/base_events.py\","
	"    \"line\":600,\"native\":false},"
	"   {\"function\":\"<module>\",\"file\":\"/tmp/ipykernel_1/9.py\","
	"    \"line\":1,\"native\":false},"
	"   {\"function\":\"ones\",\"file\":\"/np/numeric.py\",\"line\":205,"
	"    \"native\":false},"
	"   {\"function\":null,\"module\":\"/np/umath.so\",\"offset\":4660,"
	"    \"native\":true}]},"
	"  {\"bytes\":100,\"count\":2,\"cell\":null,\"frames\":["
	"   {\"function\":\"</script><b>x\",\"file\":\"/a.py\",\"line\":3,"
	"    \"native\":false}]},"
	"  {\"bytes\":0,\"count\":0,\"cell\":null,\"frames\":[]}]},"
	"\"current\":{\"bytes\":100,\"count\":2,\"at\":\"C\",\"stacks\":[],"
	" \"cells\":[{\"label\":\"In [2]\",\"live_bytes\":0}]}}";

static json_t *doc(void)
{
	json_error_t e;
	json_t *d = json_loads(doc_text, 0, &e);

	cr_assert_not_null(d, "fixture: %s", e.text);
	return d;
}

static const char *frame_at(json_t *data, json_t *stack, size_t i)
{
	json_t *path = json_array_get(stack, 2);
	size_t fi = json_integer_value(json_array_get(path, i));

	return json_string_value(json_array_get(
		json_array_get(json_object_get(data, "frames"), fi), 0));
}

Test(html, stacks_start_at_their_cell, .timeout = 10)
{
	json_t *d = doc(), *data = html__data(d);
	json_t *stacks = json_object_get(data, "stacks"), *s;

	/* The empty stack is left out. */
	cr_assert_eq(json_array_size(stacks), 2);
	s = json_array_get(stacks, 0);
	cr_assert_eq(json_integer_value(json_array_get(s, 0)), 600);
	/* Cell, then the cell's own code: the event loop is cut off. */
	cr_assert_eq(json_array_size(json_array_get(s, 2)), 4);
	cr_assert_str_eq(frame_at(data, s, 0), "In [2]");
	cr_assert_str_eq(frame_at(data, s, 1), "<module> (9.py:1)");
	cr_assert_str_eq(frame_at(data, s, 2), "ones (numeric.py:205)");
	cr_assert_str_eq(frame_at(data, s, 3), "[unknown] (umath.so)");
	cr_assert_str_eq(json_string_value(json_array_get(s, 3)), "numeric.py:"
								  "205 ones");
	/* Outside cells: the frames from the root, cell null. */
	s = json_array_get(stacks, 1);
	cr_assert(json_is_null(json_array_get(s, 4)));
	cr_assert_eq(json_array_size(json_array_get(s, 2)), 1);
	json_decref(data);
	json_decref(d);
}

Test(html, header_data, .timeout = 10)
{
	json_t *d = doc(), *data = html__data(d);
	json_t *m = json_object_get(data, "meta");

	cr_assert_eq(json_integer_value(json_object_get(m, "peak_bytes")), 700);
	cr_assert_eq(json_integer_value(json_object_get(m, "current_bytes")),
		     100);
	cr_assert_str_eq(json_string_value(json_object_get(m, "peak_at")), "P");
	cr_assert_str_eq(json_string_value(json_object_get(m, "peak_cell")),
			 "In [2]");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "oo"
									   "m"),
							"limit_bytes")),
		     1000);
	cr_assert(json_is_null(json_object_get(m, "cmdline")));
	cr_assert_eq(json_array_size(json_object_get(data, "cells")), 1);
	cr_assert_eq(json_array_size(json_object_get(data, "cells_now")), 1);
	json_decref(data);
	json_decref(d);
}

/* The page: the template around the data, and the data parses back. */
Test(html, page_embeds_the_data_safely, .timeout = 10)
{
	static const char open_tag[] = "<script id=\"memprof-data\" "
				       "type=\"application/json\">";
	json_t *d = doc(), *back;
	char *page = NULL, *start, *end;
	size_t len = 0;
	FILE *f = open_memstream(&page, &len);

	cr_assert_eq(html__write(f, d), 0);
	fclose(f);
	cr_assert_eq(strncmp(page, "<!DOCTYPE html>", 15), 0);
	cr_assert_null(strstr(page, "@MEMPROF_DATA@"));
	cr_assert(strstr(page, "</html>"));
	/* No "</script>" from a frame name: the block ends where it should. */
	start = strstr(page, open_tag);
	cr_assert_not_null(start);
	start += strlen(open_tag);
	end = strstr(start, "</script>");
	cr_assert_not_null(end);
	*end = '\0';
	cr_assert_null(strchr(start, '<'));
	back = json_loads(start, 0, NULL);
	cr_assert_not_null(back);
	cr_assert_eq(json_array_size(json_object_get(back, "frames")), 5);
	cr_assert(strstr(start, "\\u003c/script>\\u003cb>x (a.py:3)"));
	/* Nothing fetched from the network: no external script or style. */
	cr_assert_null(strstr(page, "src=\"http"));
	cr_assert_null(strstr(page, "href=\"http"));
	json_decref(back);
	free(page);
	json_decref(d);
}

/* The timeline goes to the page as it is; none (an old file): null. */
Test(html, timeline_passed_through_or_null, .timeout = 10)
{
	json_t *d = doc(), *data,
	       *t = json_pack("{s:i, s:[ii], s:{s:i, s:i}, s:[]}",
			      "interval_ms", 100, "live", 5, 9, "peak", "at_ms",
			      150, "bytes", 9, "cells");

	data = html__data(d);
	cr_assert(json_is_null(json_object_get(data, "timeline")));
	json_decref(data);
	json_object_set(d, "timeline", t);
	data = html__data(d);
	cr_assert(json_equal(json_object_get(data, "timeline"), t));
	json_decref(data);
	json_object_set_new(d, "timeline", json_string("junk"));
	data = html__data(d);
	cr_assert(json_is_null(json_object_get(data, "timeline")));
	json_decref(data);
	json_decref(t);
	json_decref(d);
}
